//! Inventory's saga reactions end to end: the real service, its own database and
//! stream namespace, and order events published to its ORDERS stream as the
//! orders relay would publish them.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use clap::Parser;
use domain::inventory::{Product, ReservationStatus};
use platform::event_store::AggregateStore;
use platform::nats::StreamSpec;
use platform::testing::{nats_url, test_namespace, wait_for_ack_floor, TestDb};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// The inventory service running against a database and namespace of its own.
struct Saga {
    db: TestDb,
    base_url: String,
    http: reqwest::Client,
    jetstream: jetstream::Context,
    orders: StreamSpec,
    inventory: StreamSpec,
    products: AggregateStore<Product>,
    /// Every order event published so far, as (subject, event id, body).
    published: Vec<(String, String, Vec<u8>)>,
    shutdown: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
}

/// One order's event stream as the test writes it.
struct Order {
    id: Uuid,
    correlation_id: Option<&'static str>,
    sequence: i64,
}

impl Order {
    fn new(correlation_id: Option<&'static str>) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            correlation_id,
            sequence: 0,
        }
    }

    fn event_id(&self, sequence: i64) -> String {
        format!("orders:Order:{}:{sequence}", self.id)
    }
}

impl Saga {
    async fn start() -> Self {
        let db = TestDb::new(&[]).await.expect("test database");
        let namespace = test_namespace();
        let config = inventory::Config::try_parse_from([
            "inventory".to_owned(),
            "--addr=127.0.0.1:0".to_owned(),
            format!("--inventory-database-url={}", db.url()),
            format!("--nats-url={}", nats_url()),
            format!("--stream-namespace={namespace}"),
        ])
        .expect("configuration");
        // Created before the service starts: a stream that the service creates
        // at the same moment can be listed before it takes messages.
        let client = platform::nats::connect(&nats_url()).await.expect("NATS");
        let jetstream = jetstream::new(client);
        let orders = StreamSpec::in_namespace(&namespace, "orders");
        platform::nats::ensure_stream(&jetstream, &orders)
            .await
            .expect("ORDERS stream");
        let service = inventory::build(config).await.expect("inventory service");
        let base_url = format!("http://127.0.0.1:{}", service.port());
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(service.run(shutdown.clone()));
        Self {
            products: AggregateStore::new("inventory", db.pool.clone(), ()),
            inventory: StreamSpec::in_namespace(&namespace, "inventory"),
            db,
            base_url,
            http: reqwest::Client::new(),
            jetstream,
            orders,
            published: Vec::new(),
            shutdown,
            running,
        }
    }

    async fn add_product(&self, sku: &str, stock: u32) {
        let body = json!({"sku": sku, "name": sku, "price_cents": 250, "initial_stock": stock});
        let response = self
            .http
            .post(format!("{}/api/products", self.base_url))
            .json(&body)
            .send()
            .await
            .expect("add product");
        assert_eq!(response.status(), 201, "add {sku}");
    }

    /// A product's events from the event-stream endpoint; none for an unknown sku.
    async fn events(&self, sku: &str) -> Vec<Value> {
        let url = format!("{}/api/products/{sku}/events", self.base_url);
        let response = self.http.get(url).send().await.expect("get events");
        if response.status() == 404 {
            return Vec::new();
        }
        let stream: Value = response.json().await.expect("event stream");
        stream["events"].as_array().expect("events").clone()
    }

    /// The product's event types from `from` on.
    async fn event_types(&self, sku: &str, from: usize) -> Vec<String> {
        let events = self.events(sku).await;
        events
            .iter()
            .skip(from - 1)
            .map(|e| e["event_type"].as_str().expect("type").to_owned())
            .collect()
    }

    async fn product(&self, sku: &str) -> Product {
        self.products.load(sku).await.expect("load product").0
    }

    /// Publishes the order's next event and waits until the saga has handled it.
    async fn publish(&mut self, order: &mut Order, event_type: &str, payload: Value) {
        order.sequence += 1;
        let event_id = order.event_id(order.sequence);
        let metadata = match order.correlation_id {
            Some(id) => json!({"correlation_id": id, "causation_id": id}),
            None => json!({}),
        };
        let envelope = json!({
            "event_id": event_id, "service": "orders", "aggregate_type": "Order",
            "aggregate_id": order.id.to_string(), "sequence": order.sequence,
            "global_position": self.published.len() + 1, "event_type": event_type,
            "event_version": "1.0", "payload": payload, "metadata": metadata,
            "recorded_at": "2026-11-21T12:00:00Z",
        });
        let subject = format!(
            "{}.Order.{}.{event_type}",
            self.orders.subject_prefix, order.id
        );
        let body = serde_json::to_vec(&envelope).expect("envelope");
        self.published
            .push((subject.clone(), event_id.clone(), body.clone()));
        let sequence = self.send(subject, &event_id, body).await;
        self.wait_until_acked(sequence).await;
    }

    async fn send(&self, subject: String, message_id: &str, body: Vec<u8>) -> u64 {
        let message = PublishMessage::build()
            .payload(body.into())
            .message_id(message_id);
        let ack = self
            .jetstream
            .send_publish(subject, message)
            .await
            .expect("publish");
        ack.await.expect("publish ack").sequence
    }

    /// Places an order for `lines` of (sku, quantity).
    async fn place(&mut self, order: &mut Order, lines: &[(&str, u64)]) {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        let payload = json!({"order_id": order.id, "customer_id": Uuid::now_v7(), "lines": lines});
        self.publish(order, "OrderPlaced", payload).await;
    }

    async fn consumer_progress(&self) -> (i64, i64) {
        sqlx::query_as("SELECT stream_seq, applied FROM consumer_checkpoints WHERE consumer = 'inventory-saga'")
            .fetch_optional(&self.db.pool)
            .await
            .expect("read checkpoint")
            .unwrap_or((0, 0))
    }

    /// Waits until the saga consumer has acked the message at `stream_sequence`:
    /// it acks once the batch committed, or at once for an event type that the
    /// saga passes over, which moves no checkpoint.
    async fn wait_until_acked(&self, stream_sequence: u64) {
        wait_for_ack_floor(
            &self.jetstream,
            &self.orders,
            "inventory-saga",
            stream_sequence,
            WAIT,
        )
        .await;
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(WAIT, self.running).await;
        stopped
            .expect("stops in time")
            .expect("task")
            .expect("stops cleanly");
        for stream in [&self.orders, &self.inventory] {
            let _ = self.jetstream.delete_stream(&stream.name).await;
        }
    }
}

/// Polls `probe` until it answers, for at most [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(answer) = probe().await {
            return answer;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn status(product: &Product, order: &Order) -> Option<ReservationStatus> {
    product
        .reservation(order.id)
        .map(|reservation| reservation.status)
}

#[tokio::test]
async fn placing_an_order_reserves_every_line_under_the_orders_correlation_id() {
    let mut saga = Saga::start().await;
    for sku in ["MUG-1", "TEA-1", "PEN-1"] {
        saga.add_product(sku, 10).await;
    }
    let mut order = Order::new(Some("req-order-1"));
    saga.place(&mut order, &[("MUG-1", 2), ("TEA-1", 3), ("PEN-1", 10)])
        .await;

    for (sku, quantity) in [("MUG-1", 2), ("TEA-1", 3), ("PEN-1", 10)] {
        let events = saga.events(sku).await;
        assert_eq!(events.len(), 2, "{sku}: {events:?}");
        let reserved = &events[1];
        assert_eq!(reserved["event_type"], "StockReserved");
        assert_eq!(
            reserved["payload"],
            json!({"order_id": order.id, "quantity": quantity, "unit_price_cents": 250})
        );
        assert_eq!(reserved["metadata"]["correlation_id"], "req-order-1");
        assert_eq!(reserved["metadata"]["causation_id"], order.event_id(1));
        assert_eq!(saga.product(sku).await.reserved(), quantity);
    }
    saga.stop().await;
}

#[tokio::test]
async fn out_of_stock_on_the_second_of_three_lines_stops_there_and_the_rejection_releases_all() {
    let mut saga = Saga::start().await;
    saga.add_product("MUG-1", 10).await;
    saga.add_product("TEA-1", 1).await;
    saga.add_product("PEN-1", 10).await;
    let mut order = Order::new(Some("req-short"));
    saga.place(&mut order, &[("MUG-1", 2), ("TEA-1", 5), ("PEN-1", 1)])
        .await;

    assert_eq!(saga.event_types("MUG-1", 2).await, ["StockReserved"]);
    let tea = saga.events("TEA-1").await;
    assert_eq!(tea[1]["event_type"], "StockReservationRejected");
    assert_eq!(tea[1]["payload"]["reason"], "OUT_OF_STOCK");
    assert!(
        saga.event_types("PEN-1", 2).await.is_empty(),
        "the third line is left alone"
    );
    assert_eq!(status(&saga.product("PEN-1").await, &order), None);

    saga.publish(
        &mut order,
        "OrderRejected",
        json!({"reason": "OUT_OF_STOCK"}),
    )
    .await;
    assert_eq!(
        saga.event_types("MUG-1", 2).await,
        ["StockReserved", "ReservationReleased"]
    );
    assert_eq!(
        saga.event_types("TEA-1", 2).await,
        ["StockReservationRejected"]
    );
    assert!(saga.event_types("PEN-1", 2).await.is_empty());
    for sku in ["MUG-1", "TEA-1", "PEN-1"] {
        assert_eq!(saga.product(sku).await.reserved(), 0, "{sku}");
    }
    assert_eq!(saga.product("MUG-1").await.available(), 10);
    saga.stop().await;
}

#[tokio::test]
async fn an_unknown_product_is_rejected_as_unknown_under_the_events_own_id() {
    let mut saga = Saga::start().await;
    // A malformed event is skipped, not retried forever in front of the next one.
    let mut broken = Order::new(None);
    let lines = json!({"order_id": broken.id, "lines": "none"});
    saga.publish(&mut broken, "OrderPlaced", lines).await;
    let mut order = Order::new(None);
    saga.place(&mut order, &[("GHOST-1", 1)]).await;

    let events = saga.events("GHOST-1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "StockReservationRejected");
    assert_eq!(events[0]["payload"]["reason"], "UNKNOWN_PRODUCT");
    assert_eq!(events[0]["metadata"]["correlation_id"], order.event_id(1));
    saga.stop().await;
}

/// Orders that end in every way the saga handles, with the events it ignores in between.
async fn run_every_ending(saga: &mut Saga) -> (Order, Order, Order) {
    saga.add_product("MUG-1", 10).await;
    saga.add_product("TEA-1", 10).await;
    let mut cancelled = Order::new(Some("req-cancel"));
    saga.place(&mut cancelled, &[("MUG-1", 2), ("TEA-1", 3)])
        .await;
    let payload = json!({"reason": null, "was": "PENDING"});
    saga.publish(&mut cancelled, "OrderCancelled", payload)
        .await;

    let mut shipped = Order::new(Some("req-ship"));
    saga.place(&mut shipped, &[("MUG-1", 4)]).await;
    let line = json!({"sku": "MUG-1", "quantity": 4, "unit_price_cents": 250});
    saga.publish(&mut shipped, "OrderLineReserved", line).await;
    let total = json!({"customer_id": Uuid::now_v7(), "total_cents": 1000});
    saga.publish(&mut shipped, "OrderStockReserved", total)
        .await;
    saga.publish(&mut shipped, "OrderConfirmed", json!({"total_cents": 1000}))
        .await;
    saga.publish(&mut shipped, "OrderShipped", json!({})).await;

    let mut rejected = Order::new(Some("req-reject"));
    saga.place(&mut rejected, &[("TEA-1", 1), ("MUG-1", 7)])
        .await;
    saga.publish(
        &mut rejected,
        "OrderRejected",
        json!({"reason": "OUT_OF_STOCK"}),
    )
    .await;
    (cancelled, shipped, rejected)
}

#[tokio::test]
async fn cancelling_releases_and_shipping_commits() {
    let mut saga = Saga::start().await;
    let (cancelled, shipped, rejected) = run_every_ending(&mut saga).await;

    let mug = saga.product("MUG-1").await;
    let tea = saga.product("TEA-1").await;
    assert_eq!(status(&mug, &cancelled), Some(ReservationStatus::Released));
    assert_eq!(status(&tea, &cancelled), Some(ReservationStatus::Released));
    assert_eq!(status(&mug, &shipped), Some(ReservationStatus::Committed));
    assert_eq!(status(&tea, &rejected), Some(ReservationStatus::Released));
    assert_eq!(status(&mug, &rejected), Some(ReservationStatus::Rejected));
    assert_eq!(
        (mug.on_hand(), mug.reserved()),
        (6, 0),
        "shipping takes stock off hand"
    );
    assert_eq!((tea.on_hand(), tea.reserved()), (10, 0));
    let committed = saga
        .events("MUG-1")
        .await
        .into_iter()
        .find(|e| e["event_type"] == "ReservationCommitted");
    let committed = committed.expect("a ReservationCommitted event");
    assert_eq!(committed["metadata"]["causation_id"], shipped.event_id(5));
    saga.stop().await;
}

#[tokio::test]
async fn delivering_every_event_again_changes_nothing() {
    let mut saga = Saga::start().await;
    run_every_ending(&mut saga).await;
    let before = (saga.events("MUG-1").await, saga.events("TEA-1").await);
    let (_, applied) = saga.consumer_progress().await;

    // The same events under new message ids get past JetStream's de-duplication.
    let mut last = 0;
    for (subject, event_id, body) in saga.published.clone() {
        last = saga.send(subject, &format!("{event_id}:again"), body).await;
    }
    saga.wait_until_acked(last).await;
    assert_eq!(
        (saga.events("MUG-1").await, saga.events("TEA-1").await),
        before
    );

    // With its offsets lost and its durable gone, the consumer hands the whole
    // stream to the reactions again: only the aggregates stand between them and a
    // second reservation.
    sqlx::query("DELETE FROM consumer_offsets WHERE consumer = 'inventory-saga'")
        .execute(&saga.db.pool)
        .await
        .expect("forget offsets");
    let stream = saga
        .jetstream
        .get_stream(&saga.orders.name)
        .await
        .expect("stream");
    stream
        .delete_consumer("inventory-saga")
        .await
        .expect("delete durable");
    eventually("the replay to be applied", || async {
        (saga.consumer_progress().await.1 >= 2 * applied).then_some(())
    })
    .await;
    assert_eq!(
        (saga.events("MUG-1").await, saga.events("TEA-1").await),
        before
    );
    saga.stop().await;
}

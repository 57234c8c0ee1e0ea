//! The products projection against real PostgreSQL and NATS: each test has its own
//! database and its own stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use async_trait::async_trait;
use domain::inventory::{ProductEvent, RejectionReason};
use futures::StreamExt;
use platform::config::CommonArgs;
use platform::consumer::{Consumer, ConsumerConfig, Handler};
use platform::db::READ_MODEL_MIGRATIONS;
use platform::nats::StreamSpec;
use platform::telemetry::LogFormat;
use platform::testing::{test_namespace, test_stream, wait_for_ack_floor, TestDb};
use platform::Envelope;
use projections::products::ProductsProjection;
use projections::{Config, MIGRATIONS};
use sqlx::{PgConnection, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

type Row = (String, String, i64, i64, i64, i64, i64);

fn nats_url() -> String {
    platform::testing::nats_url()
}

async fn jetstream_for(stream: &StreamSpec) -> jetstream::Context {
    let client = platform::nats::connect(&nats_url()).await.unwrap();
    let jetstream = jetstream::new(client);
    platform::nats::ensure_stream(&jetstream, stream)
        .await
        .unwrap();
    jetstream
}

/// An Envelope as the inventory relay would publish it, stamped with a fixed time
/// derived from its position so that every replay sees the same data.
fn envelope(sku: &str, sequence: i64, position: i64, event: &ProductEvent) -> Envelope {
    let tagged = serde_json::to_value(event).unwrap();
    let (event_type, payload) = tagged.as_object().unwrap().iter().next().unwrap();
    Envelope {
        event_id: Envelope::event_id_for("inventory", "Product", sku, sequence),
        service: "inventory".into(),
        aggregate_type: "Product".into(),
        aggregate_id: sku.into(),
        sequence,
        global_position: position,
        event_type: event_type.clone(),
        event_version: "1.0".into(),
        payload: payload.clone(),
        metadata: [("correlation_id".to_owned(), "test".to_owned())].into(),
        recorded_at: chrono::DateTime::from_timestamp(1_800_000_000 + position, 0).unwrap(),
    }
}

/// Publishes with `Nats-Msg-Id` = event id, acks pipelined; returns the last stream sequence.
async fn publish_all(js: &jetstream::Context, stream: &StreamSpec, envelopes: &[Envelope]) -> u64 {
    let mut acks = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
        let body = serde_json::to_vec(envelope).unwrap();
        let ack = js
            .publish_with_headers(stream.subject_for(envelope), headers, body.into())
            .await
            .unwrap();
        acks.push(ack);
    }
    let mut last = 0;
    for ack in acks {
        last = last.max(ack.await.unwrap().sequence);
    }
    last
}

fn spawn_consumer(
    js: &jetstream::Context,
    pool: &PgPool,
    handler: Arc<dyn Handler>,
    durable: &str,
    stream: &StreamSpec,
) -> (JoinHandle<()>, CancellationToken) {
    let mut config = ConsumerConfig::new(
        durable,
        stream.clone(),
        format!("{}.Product.>", stream.subject_prefix),
    );
    config.ack_wait = Duration::from_secs(1);
    let consumer = Consumer::new(js.clone(), pool.clone(), handler, config);
    let shutdown = CancellationToken::new();
    (tokio::spawn(consumer.run(shutdown.clone())), shutdown)
}

async fn stop(task: JoinHandle<()>, shutdown: CancellationToken) {
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

async fn rows(pool: &PgPool) -> Vec<Row> {
    sqlx::query_as("SELECT sku, name, price_cents, on_hand, reserved, available, version FROM products ORDER BY sku")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Every column of every row, `updated_at` included.
async fn snapshot(pool: &PgPool) -> serde_json::Value {
    sqlx::query_scalar("SELECT coalesce(json_agg(p ORDER BY sku), '[]'::json) FROM products p")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn checkpoint(pool: &PgPool, durable: &str) -> (i64, i64) {
    sqlx::query_as("SELECT stream_seq, applied FROM consumer_checkpoints WHERE consumer = $1")
        .bind(durable)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A pseudo-random but repeatable history for `skus` products, and the rows the
/// projection must end with, worked out independently of it.
struct History {
    envelopes: Vec<Envelope>,
    expected: Vec<Row>,
}

#[derive(Default)]
struct ProductModel {
    price: i64,
    on_hand: i64,
    reserved: i64,
    version: i64,
    open: Vec<(Uuid, u64)>,
}

fn history(skus: usize, events: usize) -> History {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut models: BTreeMap<String, ProductModel> = BTreeMap::new();
    let mut envelopes = Vec::with_capacity(events);
    while envelopes.len() < events {
        let sku = format!("SKU-{:03}", random(skus as u64));
        let model = models.entry(sku.clone()).or_default();
        let event = next_event(model, &sku, &mut random);
        model.version += 1;
        let position = envelopes.len() as i64 + 1;
        envelopes.push(envelope(&sku, model.version, position, &event));
    }
    let expected = models
        .into_iter()
        .map(|(sku, m)| {
            (
                sku.clone(),
                format!("Product {sku}"),
                m.price,
                m.on_hand,
                m.reserved,
                m.on_hand - m.reserved,
                m.version,
            )
        })
        .collect();
    History {
        envelopes,
        expected,
    }
}

fn next_event(
    model: &mut ProductModel,
    sku: &str,
    random: &mut impl FnMut(u64) -> u64,
) -> ProductEvent {
    if model.version == 0 {
        model.price = 100 + random(900) as i64;
        model.on_hand = random(20) as i64;
        return ProductEvent::ProductAdded {
            sku: sku.into(),
            name: format!("Product {sku}"),
            price_cents: model.price,
            initial_stock: model.on_hand as u64,
        };
    }
    let quantity = 1 + random(10);
    match random(5) {
        0 => {
            model.on_hand += quantity as i64;
            ProductEvent::Restocked { quantity }
        }
        1 => {
            model.price = 100 + random(900) as i64;
            ProductEvent::PriceChanged {
                price_cents: model.price,
            }
        }
        2 if model.on_hand - model.reserved >= quantity as i64 => {
            let order_id = Uuid::now_v7();
            model.reserved += quantity as i64;
            model.open.push((order_id, quantity));
            ProductEvent::StockReserved {
                order_id,
                quantity,
                unit_price_cents: model.price,
            }
        }
        2 => ProductEvent::StockReservationRejected {
            order_id: Uuid::now_v7(),
            quantity,
            available: (model.on_hand - model.reserved) as u64,
            reason: RejectionReason::OutOfStock,
        },
        choice => match model.open.pop() {
            Some((order_id, quantity)) if choice == 3 => {
                model.reserved -= quantity as i64;
                ProductEvent::ReservationReleased { order_id, quantity }
            }
            Some((order_id, quantity)) => {
                model.reserved -= quantity as i64;
                model.on_hand -= quantity as i64;
                ProductEvent::ReservationCommitted { order_id, quantity }
            }
            None => {
                model.on_hand += quantity as i64;
                ProductEvent::Restocked { quantity }
            }
        },
    }
}

#[tokio::test]
async fn events_published_to_the_stream_become_product_rows() {
    let db = TestDb::new(&[]).await.unwrap();
    let namespace = test_namespace();
    let stream = StreamSpec::in_namespace(&namespace, "inventory");
    // The worker creates the streams of its other read models too.
    let other_streams = ["customers", "orders", "payments"]
        .map(|service| StreamSpec::in_namespace(&namespace, service).name);
    let js = jetstream_for(&stream).await;
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        projections_database_url: Some(db.url()),
        common: CommonArgs {
            stream_namespace: namespace,
            database_url: db.server_url(),
            nats_url: nats_url(),
            log_format: LogFormat::Pretty,
        },
    };
    let app = projections::build(config).await.unwrap();
    let port = app.port();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run(shutdown.clone()));

    let order = |n: u128| Uuid::from_u128(n);
    let mug = [
        ProductEvent::ProductAdded {
            sku: "MUG-1".into(),
            name: "Blue mug".into(),
            price_cents: 1000,
            initial_stock: 10,
        },
        ProductEvent::Restocked { quantity: 5 },
        ProductEvent::StockReserved {
            order_id: order(1),
            quantity: 3,
            unit_price_cents: 1000,
        },
        ProductEvent::StockReserved {
            order_id: order(2),
            quantity: 4,
            unit_price_cents: 1000,
        },
        ProductEvent::ReservationReleased {
            order_id: order(2),
            quantity: 4,
        },
        ProductEvent::ReservationCommitted {
            order_id: order(1),
            quantity: 3,
        },
        ProductEvent::PriceChanged { price_cents: 1200 },
        ProductEvent::StockReservationRejected {
            order_id: order(3),
            quantity: 50,
            available: 12,
            reason: RejectionReason::OutOfStock,
        },
    ];
    let tea = [
        ProductEvent::ProductAdded {
            sku: "TEA-7".into(),
            name: "Green tea".into(),
            price_cents: 450,
            initial_stock: 2,
        },
        ProductEvent::StockReserved {
            order_id: order(4),
            quantity: 2,
            unit_price_cents: 450,
        },
    ];
    let mut envelopes: Vec<Envelope> = mug
        .iter()
        .enumerate()
        .map(|(i, e)| envelope("MUG-1", i as i64 + 1, i as i64 + 1, e))
        .collect();
    // Interleaved with the mug's events, as different aggregates' events are.
    for (i, event) in tea.iter().enumerate() {
        envelopes.insert(
            2 * i + 1,
            envelope("TEA-7", i as i64 + 1, 100 + i as i64, event),
        );
    }
    publish_all(&js, &stream, &envelopes[..5]).await;
    // Not an Envelope: it must be terminated, not block the events behind it.
    js.publish(
        format!("{}.Product.JUNK.Broken", stream.subject_prefix),
        "not json".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let last = publish_all(&js, &stream, &envelopes[5..]).await;

    let converged = async {
        loop {
            let seq: Option<i64> = sqlx::query_scalar(
                "SELECT stream_seq FROM consumer_checkpoints WHERE consumer = 'products'",
            )
            .fetch_optional(&db.pool)
            .await
            .unwrap();
            if seq == Some(last as i64) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, converged)
        .await
        .expect("the worker did not reach the last event");

    assert_eq!(
        rows(&db.pool).await,
        vec![
            ("MUG-1".into(), "Blue mug".into(), 1200, 12, 0, 12, 8),
            ("TEA-7".into(), "Green tea".into(), 450, 2, 2, 0, 2),
        ]
    );
    assert_eq!(checkpoint(&db.pool, "products").await, (last as i64, 10));
    assert!(http_get(port, "/readyz").await.starts_with("HTTP/1.1 200"));

    shutdown.cancel();
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    js.delete_stream(&stream.name).await.unwrap();
    for name in other_streams {
        js.delete_stream(name).await.unwrap();
    }
}

async fn http_get(port: u16, path: &str) -> String {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn redelivering_the_whole_stream_leaves_the_read_model_unchanged() {
    let db = TestDb::new(&[&READ_MODEL_MIGRATIONS, &MIGRATIONS])
        .await
        .unwrap();
    let stream = test_stream("inventory");
    let js = jetstream_for(&stream).await;
    let history = history(10, 300);
    let last = publish_all(&js, &stream, &history.envelopes).await;

    let (task, shutdown) = spawn_consumer(
        &js,
        &db.pool,
        Arc::new(ProductsProjection),
        "products",
        &stream,
    );
    wait_for_ack_floor(&js, &stream, "products", last, WAIT).await;
    stop(task, shutdown).await;
    assert_eq!(rows(&db.pool).await, history.expected);
    let before = snapshot(&db.pool).await;
    assert_eq!(checkpoint(&db.pool, "products").await, (last as i64, 300));

    // A new consumer under the same name starts again from the first message.
    let nats_stream = js.get_stream(&stream.name).await.unwrap();
    nats_stream.delete_consumer("products").await.unwrap();
    let (task, shutdown) = spawn_consumer(
        &js,
        &db.pool,
        Arc::new(ProductsProjection),
        "products",
        &stream,
    );
    wait_for_ack_floor(&js, &stream, "products", last, WAIT).await;
    let redelivered: PullConsumer = nats_stream.get_consumer("products").await.unwrap();
    assert!(
        redelivered.cached_info().delivered.consumer_sequence >= 300,
        "the stream was not redelivered"
    );
    stop(task, shutdown).await;

    assert_eq!(snapshot(&db.pool).await, before);
    assert_eq!(
        checkpoint(&db.pool, "products").await,
        (last as i64, 300),
        "every redelivered event must be skipped"
    );
    js.delete_stream(&stream.name).await.unwrap();
}

#[tokio::test]
async fn a_delivery_lost_in_flight_is_applied_before_newer_events() {
    let db = TestDb::new(&[&READ_MODEL_MIGRATIONS, &MIGRATIONS])
        .await
        .unwrap();
    let stream = test_stream("inventory");
    let js = jetstream_for(&stream).await;
    let history = history(5, 400);
    let first = publish_all(&js, &stream, &history.envelopes[..100]).await;
    let (task, shutdown) = spawn_consumer(
        &js,
        &db.pool,
        Arc::new(ProductsProjection),
        "products",
        &stream,
    );
    wait_for_ack_floor(&js, &stream, "products", first, WAIT).await;
    // By now the worker waits in its next fetch; a second pull request on the
    // same durable queues behind it and takes deliveries that are then never
    // acked, as a connection that drops with messages in flight would.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let thief: PullConsumer = js
        .get_stream(&stream.name)
        .await
        .unwrap()
        .get_consumer("products")
        .await
        .unwrap();
    let stolen = tokio::spawn(async move {
        let batch = thief
            .batch()
            .max_messages(20)
            .expires(Duration::from_secs(3))
            .messages()
            .await
            .unwrap();
        batch.count().await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last = publish_all(&js, &stream, &history.envelopes[100..]).await;
    assert!(stolen.await.unwrap() > 0, "no delivery went astray");

    wait_for_ack_floor(&js, &stream, "products", last, WAIT).await;
    stop(task, shutdown).await;

    assert_eq!(rows(&db.pool).await, history.expected);
    js.delete_stream(&stream.name).await.unwrap();
}

/// Panics on its `crash_at`-th event, in the middle of a batch's transaction.
struct CrashingProjection {
    seen: AtomicUsize,
    crash_at: usize,
}

#[async_trait]
impl Handler for CrashingProjection {
    fn name(&self) -> &str {
        "products"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.crash_at {
            panic!("simulated crash in the middle of a batch");
        }
        ProductsProjection.apply(tx, envelope).await
    }
}

#[tokio::test]
async fn a_worker_killed_mid_batch_converges_to_a_clean_replay() {
    let db = TestDb::new(&[&READ_MODEL_MIGRATIONS, &MIGRATIONS])
        .await
        .unwrap();
    let clean = TestDb::new(&[&READ_MODEL_MIGRATIONS, &MIGRATIONS])
        .await
        .unwrap();
    let stream = test_stream("inventory");
    let js = jetstream_for(&stream).await;
    let history = history(50, 2_000);
    // 650 events make batches of 256, 256 and 138: the crash hits the third, which
    // is smaller than max_ack_pending, so newer events could overtake it.
    publish_all(&js, &stream, &history.envelopes[..650]).await;

    let crashing = Arc::new(CrashingProjection {
        seen: AtomicUsize::new(0),
        crash_at: 600,
    });
    let (task, _shutdown) = spawn_consumer(&js, &db.pool, crashing, "products", &stream);
    let crashed = tokio::time::timeout(WAIT, task).await.unwrap();
    assert!(crashed.unwrap_err().is_panic());
    let (_, applied) = checkpoint(&db.pool, "products").await;
    assert_eq!(applied, 512, "the crashed batch must roll back as a whole");
    let last = publish_all(&js, &stream, &history.envelopes[650..]).await;

    // A second crash, once the restarted worker has committed a batch, lands
    // wherever it happens to be: mid-batch, or between a commit and its acks.
    let (task, _shutdown) = spawn_consumer(
        &js,
        &db.pool,
        Arc::new(ProductsProjection),
        "products",
        &stream,
    );
    let progressed = async {
        while checkpoint(&db.pool, "products").await.1 <= 512 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(WAIT, progressed).await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let (task, shutdown) = spawn_consumer(
        &js,
        &db.pool,
        Arc::new(ProductsProjection),
        "products",
        &stream,
    );
    wait_for_ack_floor(&js, &stream, "products", last, WAIT).await;
    stop(task, shutdown).await;

    let (task, shutdown) = spawn_consumer(
        &js,
        &clean.pool,
        Arc::new(ProductsProjection),
        "clean-replay",
        &stream,
    );
    wait_for_ack_floor(&js, &stream, "clean-replay", last, WAIT).await;
    stop(task, shutdown).await;

    assert_eq!(rows(&db.pool).await, history.expected);
    assert_eq!(snapshot(&db.pool).await, snapshot(&clean.pool).await);
    assert_eq!(checkpoint(&db.pool, "products").await, (last as i64, 2_000));
    js.delete_stream(&stream.name).await.unwrap();
}

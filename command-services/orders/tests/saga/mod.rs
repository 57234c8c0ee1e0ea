//! A running orders service with a database and stream namespace of its own, and
//! stand-ins for inventory and payments: they publish Envelopes to the namespace's
//! INVENTORY and PAYMENTS streams as those services' relays would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use clap::Parser;
use domain::inventory::ProductEvent;
use domain::payments::PaymentEvent;
use platform::nats::StreamSpec;
use platform::testing::{test_namespace, TestDb};
use platform::Envelope;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest any wait in these tests lasts.
pub const WAIT: Duration = Duration::from_secs(20);

/// The customer of every order in these tests.
pub const CUSTOMER: &str = "0190a0f6-5b1c-7c3e-8f00-000000000001";

/// An orders service under test and the streams it reacts to.
pub struct Saga {
    /// The orders event store.
    pub db: TestDb,
    /// The service's base URL.
    pub url: String,
    http: reqwest::Client,
    js: jetstream::Context,
    streams: HashMap<&'static str, StreamSpec>,
    last_sequence: HashMap<(String, String), i64>,
    /// Every Envelope published so far, with the service whose stream holds it.
    pub published: Vec<(&'static str, Envelope)>,
    shutdown: CancellationToken,
    running: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Saga {
    /// Starts the service on port 0 in a namespace of its own.
    pub async fn start() -> Self {
        let db = TestDb::new(&[]).await.expect("orders database");
        let namespace = test_namespace();
        let nats_url = platform::testing::nats_url();
        let config = orders::Config::try_parse_from([
            "orders".to_owned(),
            "--addr=127.0.0.1:0".to_owned(),
            format!("--orders-database-url={}", db.url()),
            format!("--nats-url={nats_url}"),
            format!("--stream-namespace={namespace}"),
        ])
        .expect("configuration");
        let client = platform::nats::connect(&nats_url).await.expect("NATS");
        let js = jetstream::new(client);
        let mut streams = HashMap::new();
        for service in ["inventory", "payments", "orders"] {
            let spec = StreamSpec::in_namespace(&namespace, service);
            platform::nats::ensure_stream(&js, &spec)
                .await
                .expect("stream");
            streams.insert(service, spec);
        }
        let service = orders::build(config).await.expect("orders service");
        let url = format!("http://127.0.0.1:{}", service.port());
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(service.run(shutdown.clone()));
        Self {
            db,
            url,
            http: reqwest::Client::new(),
            js,
            streams,
            last_sequence: HashMap::new(),
            published: Vec::new(),
            shutdown,
            running: Some(running),
        }
    }

    /// Places an order over HTTP with `request_id` as its correlation id; returns its id.
    pub async fn place(&self, lines: &[(&str, u64)], request_id: &str) -> String {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        let response = self
            .http
            .post(format!("{}/api/orders", self.url))
            .header("x-request-id", request_id)
            .json(&json!({"customer_id": CUSTOMER, "lines": lines}))
            .send()
            .await
            .expect("place order");
        assert_eq!(response.status().as_u16(), 202);
        let body: Value = response.json().await.expect("placed order");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Publishes a product event as inventory's relay would, after a `ProductAdded`
    /// when the sku is new, so that each product's sequences start at 1.
    pub async fn product(
        &mut self,
        sku: &str,
        event: ProductEvent,
        correlation_id: Option<&str>,
    ) -> Envelope {
        if !self
            .last_sequence
            .contains_key(&("Product".into(), sku.into()))
        {
            let added = ProductEvent::ProductAdded {
                sku: sku.into(),
                name: format!("Product {sku}"),
                price_cents: 100,
                initial_stock: 10,
            };
            self.publish("inventory", "Product", sku, &added, None)
                .await;
        }
        self.publish("inventory", "Product", sku, &event, correlation_id)
            .await
    }

    /// Publishes a payment event as payments' relay would.
    pub async fn payment(
        &mut self,
        order_id: &str,
        event: PaymentEvent,
        correlation_id: Option<&str>,
    ) -> Envelope {
        self.publish("payments", "Payment", order_id, &event, correlation_id)
            .await
    }

    async fn publish(
        &mut self,
        service: &'static str,
        aggregate_type: &str,
        aggregate_id: &str,
        event: &impl serde::Serialize,
        correlation_id: Option<&str>,
    ) -> Envelope {
        let key = (aggregate_type.to_owned(), aggregate_id.to_owned());
        let sequence = *self
            .last_sequence
            .entry(key)
            .and_modify(|s| *s += 1)
            .or_insert(1);
        let tagged = serde_json::to_value(event).expect("event JSON");
        let (event_type, payload) = tagged
            .as_object()
            .and_then(|map| map.iter().next())
            .expect("an externally tagged event");
        let mut metadata = HashMap::from([("causation_id".to_owned(), "test".to_owned())]);
        if let Some(id) = correlation_id {
            metadata.insert("correlation_id".to_owned(), id.to_owned());
        }
        let envelope = Envelope {
            event_id: Envelope::event_id_for(service, aggregate_type, aggregate_id, sequence),
            service: service.to_owned(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            sequence,
            global_position: self.published.len() as i64 + 1,
            event_type: event_type.clone(),
            event_version: "1.0".to_owned(),
            payload: payload.clone(),
            metadata,
            recorded_at: chrono::Utc::now(),
        };
        self.send(service, &envelope, &envelope.event_id).await;
        self.published.push((service, envelope.clone()));
        envelope
    }

    /// Puts `envelope` on its service's stream under `message_id`; returns the
    /// stream sequence.
    pub async fn send(&self, service: &str, envelope: &Envelope, message_id: &str) -> u64 {
        let stream = &self.streams[service];
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message_id);
        let body = serde_json::to_vec(envelope).expect("envelope JSON");
        self.js
            .publish_with_headers(stream.subject_for(envelope), headers, body.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack")
            .sequence
    }

    /// The order's event stream as the API answers it.
    pub async fn events(&self, order_id: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/api/orders/{order_id}/events", self.url))
            .send()
            .await
            .expect("read events");
        let stream: Value = response.json().await.expect("event stream");
        stream["events"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the order's events until `done` holds for them, for at most [`WAIT`].
    pub async fn wait_for(&self, order_id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let events = self.events(order_id).await;
            if done(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "order {order_id} did not get there within {WAIT:?}: {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the consumer `durable` has committed everything up to stream
    /// sequence `last`.
    pub async fn wait_until_consumed(&self, durable: &str, last: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let committed: Option<i64> = sqlx::query_scalar(
                "SELECT stream_seq FROM consumer_checkpoints WHERE consumer = $1",
            )
            .bind(durable)
            .fetch_optional(&self.db.pool)
            .await
            .expect("read checkpoint");
            if committed.is_some_and(|seq| seq >= last as i64) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{durable} did not reach stream sequence {last} within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the service, checks it stopped cleanly, and deletes the test's streams.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            tokio::time::timeout(WAIT, running)
                .await
                .expect("the service stops in time")
                .expect("service task")
                .expect("the service stopped cleanly");
        }
        for stream in self.streams.values() {
            let _ = self.js.delete_stream(&stream.name).await;
        }
    }
}

impl Drop for Saga {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The event types of an event stream, in order.
pub fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or(""))
        .collect()
}

/// Whether the stream has an event of type `event_type`.
pub fn has(events: &[Value], event_type: &str) -> bool {
    types(events).contains(&event_type)
}

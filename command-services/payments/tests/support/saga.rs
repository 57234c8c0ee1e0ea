//! The payments service running with a database and a stream namespace of its own,
//! fed by publishing customer and order events the way their relays do.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use clap::Parser;
use domain::payments::CustomerCredit;
use payments::reactions::Stores;
use payments::Config;
use platform::nats::StreamSpec;
use platform::testing::{nats_url, test_namespace, TestDb};
use platform::Envelope;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for the saga before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A running payments service and the streams it consumes; stopped when dropped.
pub struct Saga {
    /// The service's event store.
    pub db: TestDb,
    /// The service's aggregates, read directly to check the credit.
    pub stores: Stores,
    base_url: String,
    http: reqwest::Client,
    jetstream: jetstream::Context,
    customers: StreamSpec,
    orders: StreamSpec,
    payments: StreamSpec,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Saga {
    /// Starts the service, which declines orders of unknown customers after
    /// `unknown_customer_wait_ms`.
    pub async fn start(unknown_customer_wait_ms: u64) -> Self {
        let db = TestDb::new(&[]).await.expect("payments database");
        let namespace = test_namespace();
        let nats = nats_url();
        let config = Config::try_parse_from([
            "payments".to_owned(),
            "--addr=127.0.0.1:0".to_owned(),
            format!("--payments-database-url={}", db.url()),
            format!("--nats-url={nats}"),
            format!("--stream-namespace={namespace}"),
            format!("--unknown-customer-wait-ms={unknown_customer_wait_ms}"),
        ])
        .expect("test configuration");
        // The streams exist before the service starts: its consumers would create
        // them too, and two clients creating one stream at once may collide.
        let client = platform::nats::connect(&nats).await.expect("NATS");
        let jetstream = jetstream::new(client);
        let customers = StreamSpec::in_namespace(&namespace, "customers");
        let orders = StreamSpec::in_namespace(&namespace, "orders");
        for stream in [&customers, &orders] {
            platform::nats::ensure_stream(&jetstream, stream)
                .await
                .unwrap_or_else(|error| panic!("stream {}: {error:#}", stream.name));
        }
        let service = payments::build(config).await.expect("payments service");
        let base_url = format!("http://127.0.0.1:{}", service.port());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service.run(shutdown.clone()));
        Self {
            stores: Stores::new(db.pool.clone()),
            db,
            base_url,
            http: reqwest::Client::new(),
            jetstream,
            customers,
            orders,
            payments: StreamSpec::in_namespace(&namespace, "payments"),
            shutdown,
            task: Some(task),
        }
    }

    /// Publishes events to their service's stream with `Nats-Msg-Id` = event id,
    /// as the relays do.
    pub async fn publish(&self, envelopes: &[Envelope]) {
        for envelope in envelopes {
            self.publish_as(envelope, &envelope.event_id).await;
        }
    }

    /// Publishes events a second time under other message ids, which JetStream's
    /// de-duplication lets through: a redelivery the consumers must absorb.
    pub async fn publish_again(&self, envelopes: &[Envelope]) {
        for envelope in envelopes {
            self.publish_as(envelope, &format!("{}:again", envelope.event_id))
                .await;
        }
    }

    async fn publish_as(&self, envelope: &Envelope, message_id: &str) {
        let stream = match envelope.service.as_str() {
            "customers" => &self.customers,
            "orders" => &self.orders,
            other => panic!("no stream for {other}"),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message_id);
        let body = serde_json::to_vec(envelope).expect("serialize envelope");
        self.jetstream
            .publish_with_headers(stream.subject_for(envelope), headers, body.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    /// `GET /api/payments/{order_id}/events`: its status and body.
    pub async fn get_events(&self, order_id: Uuid) -> (u16, Value) {
        let url = format!("{}/api/payments/{order_id}/events", self.base_url);
        let response = self.http.get(url).send().await.expect("GET events");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the order's payment has at least `count` events, and returns
    /// them all.
    pub async fn payment_events(&self, order_id: Uuid, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.get_events(order_id).await;
            let events = body["events"].as_array().cloned().unwrap_or_default();
            if status == 200 && events.len() >= count {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "order {order_id}: {count} payment events expected, got {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The event types of the order's payment once it has `count` events.
    pub async fn payment_history(&self, order_id: Uuid, count: usize) -> Vec<String> {
        event_types(&self.payment_events(order_id, count).await)
    }

    /// The customer's credit as payments knows it.
    pub async fn credit(&self, customer_id: Uuid) -> CustomerCredit {
        let (credit, _) = self
            .stores
            .credits
            .load(&customer_id.to_string())
            .await
            .expect("load credit");
        credit
    }

    /// Waits until payments has opened the customer's credit account.
    pub async fn account_opened(&self, customer_id: Uuid) {
        self.credit_when(customer_id, CustomerCredit::is_open).await;
    }

    /// Waits until the customer's credit satisfies `condition`, and returns it.
    /// Customer and order events travel on different streams, so a test that
    /// needs one applied before the other waits for it.
    pub async fn credit_when(
        &self,
        customer_id: Uuid,
        condition: impl Fn(&CustomerCredit) -> bool,
    ) -> CustomerCredit {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let credit = self.credit(customer_id).await;
            if condition(&credit) {
                return credit;
            }
            assert!(
                Instant::now() < deadline,
                "credit of {customer_id}: {credit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The longest-running transaction in the service's database that holds a
    /// transaction id, if any: such a transaction holds back every relay on the
    /// PostgreSQL cluster while it is open.
    pub async fn oldest_writing_transaction(&self) -> Option<Duration> {
        let seconds: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM max(clock_timestamp() - xact_start))::float8
               FROM pg_stat_activity
              WHERE datname = current_database() AND backend_xid IS NOT NULL",
        )
        .fetch_one(&self.db.pool)
        .await
        .expect("read pg_stat_activity");
        seconds.map(Duration::from_secs_f64)
    }

    /// How many events the service's event store holds.
    pub async fn stored_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }

    /// Stops the service, checks it stopped cleanly and deletes the test's streams.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .expect("service task")
                .expect("service stopped cleanly");
        }
        for stream in [&self.customers, &self.orders, &self.payments] {
            let _ = self.jetstream.delete_stream(&stream.name).await;
        }
    }
}

impl Drop for Saga {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The `event_type` of each event.
pub fn event_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["event_type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

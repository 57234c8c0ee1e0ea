//! What the read-model tests share: histories of customers, orders and payments as
//! their relays would publish them, streams of their own per test, a running
//! projection worker, and snapshots of its tables.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use platform::config::CommonArgs;
use platform::nats::StreamSpec;
use platform::telemetry::LogFormat;
use platform::testing::{nats_url, test_namespace, wait_for_ack_floor, TestDb};
use platform::Envelope;
use projections::Config;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod story;

// Each test binary uses a different part of the story.
#[allow(unused_imports)]
pub use story::{confirm, placed, registered, story, History};

/// Longest wait for the worker to catch up.
pub const WAIT: Duration = Duration::from_secs(30);

/// Every table the worker writes, apart from products.
pub const TABLES: [&str; 7] = [
    "orders",
    "order_lines",
    "customers",
    "customer_links",
    "payments",
    "notifications",
    "notification_orders",
];

/// The streams of one test, in a namespace of its own, with the last sequence
/// published to each.
pub struct Streams {
    pub namespace: String,
    pub jetstream: jetstream::Context,
    last: HashMap<String, u64>,
}

impl Streams {
    pub async fn new() -> Self {
        let client = platform::nats::connect(&nats_url()).await.unwrap();
        Self {
            namespace: test_namespace(),
            jetstream: jetstream::new(client),
            last: HashMap::new(),
        }
    }

    pub fn spec(&self, service: &str) -> StreamSpec {
        StreamSpec::in_namespace(&self.namespace, service)
    }

    /// Publishes each envelope to its service's stream, with `Nats-Msg-Id` = event
    /// id as the relay does, and waits for the acks. A lost ack is published again,
    /// which the stream de-duplicates, as the relay would.
    pub async fn publish(&mut self, envelopes: &[Envelope]) {
        for service in ["customers", "orders", "payments"] {
            let stream = self.spec(service);
            platform::nats::ensure_stream(&self.jetstream, &stream)
                .await
                .unwrap();
        }
        let mut acks = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            acks.push((envelope, self.send(envelope).await));
        }
        for (envelope, ack) in acks {
            let mut ack = ack.await;
            // A stream created a moment ago by a racing client may not answer yet.
            for attempt in 1..=20 {
                if ack.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                ack = self.send(envelope).await.await;
            }
            let sequence = ack.unwrap().sequence;
            let last = self.last.entry(envelope.service.clone()).or_default();
            *last = (*last).max(sequence);
        }
    }

    async fn send(&self, envelope: &Envelope) -> jetstream::context::PublishAckFuture {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
        let body = serde_json::to_vec(envelope).unwrap().into();
        let subject = self.spec(&envelope.service).subject_for(envelope);
        self.jetstream
            .publish_with_headers(subject, headers, body)
            .await
            .unwrap()
    }

    /// Waits until every consumer of the worker has acked everything published so far.
    pub async fn wait_until_applied(&self) {
        for source in projections::app::sources() {
            let Some(&last) = self.last.get(source.service) else {
                continue;
            };
            let stream = self.spec(source.service);
            wait_for_ack_floor(&self.jetstream, &stream, source.durable_name, last, WAIT).await;
        }
    }

    /// Deletes every consumer of the worker, so that the next worker starts each
    /// stream again from its first message.
    pub async fn forget_consumers(&self) {
        for source in projections::app::sources() {
            let name = self.spec(source.service).name;
            if let Ok(stream) = self.jetstream.get_stream(&name).await {
                let _ = stream.delete_consumer(source.durable_name).await;
            }
        }
    }

    pub async fn delete(self) {
        for service in ["inventory", "customers", "orders", "payments"] {
            let _ = self.jetstream.delete_stream(self.spec(service).name).await;
        }
    }
}

/// A running projection worker.
pub struct Worker {
    task: JoinHandle<anyhow::Result<()>>,
    shutdown: CancellationToken,
}

impl Worker {
    pub async fn start(db: &TestDb, streams: &Streams) -> Self {
        let config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            projections_database_url: Some(db.url()),
            common: CommonArgs {
                database_url: db.url(),
                nats_url: nats_url(),
                stream_namespace: streams.namespace.clone(),
                log_format: LogFormat::Pretty,
            },
        };
        let service = projections::build(config).await.unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service.run(shutdown.clone()));
        Self { task, shutdown }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Every column of every row of a table, in a fixed order.
pub async fn snapshot(pool: &PgPool, table: &str) -> serde_json::Value {
    let sql = format!("SELECT coalesce(json_agg(t ORDER BY t::text), '[]'::json) FROM {table} t");
    sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap()
}

/// Snapshots of every table the worker writes, apart from products.
pub async fn snapshots(pool: &PgPool) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for table in TABLES {
        all.push(snapshot(pool, table).await);
    }
    all
}

/// A fresh database, and a worker on streams of its own that has applied `envelopes`.
pub async fn applied(envelopes: &[Envelope]) -> (TestDb, Streams, Worker) {
    let db = TestDb::new(&[]).await.unwrap();
    let mut streams = Streams::new().await;
    let worker = Worker::start(&db, &streams).await;
    streams.publish(envelopes).await;
    streams.wait_until_applied().await;
    (db, streams, worker)
}

/// Checks that the consumer `durable_name` handed its read model exactly the
/// events of `envelopes` of `aggregate_type` whose type is one of `event_types`,
/// and that the others it passed over were there to pass over.
pub async fn assert_handed_over_only(
    pool: &PgPool,
    durable_name: &str,
    envelopes: &[Envelope],
    (aggregate_type, event_types): (&str, &[&str]),
) {
    let applied: Option<i64> = sqlx::query_scalar(
        "SELECT sum(applied)::bigint FROM consumer_checkpoints WHERE consumer = $1",
    )
    .bind(durable_name)
    .fetch_one(pool)
    .await
    .unwrap();
    let of_type: Vec<&Envelope> = envelopes
        .iter()
        .filter(|envelope| envelope.aggregate_type == aggregate_type)
        .collect();
    let chosen = of_type
        .iter()
        .filter(|envelope| event_types.contains(&envelope.event_type.as_str()))
        .count();
    assert!(
        chosen < of_type.len(),
        "no {aggregate_type} event to pass over"
    );
    assert_eq!(applied.unwrap_or(0), chosen as i64, "{durable_name}");
}

//! `shop relay republish` at the relay level, against real PostgreSQL and NATS:
//! after the stream is lost, or when it holds only part of the log, a republish
//! leaves exactly one message per event in relay order, and asking again changes
//! nothing.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, context::GetStreamErrorKind};
use futures::StreamExt;
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::nats::StreamSpec;
use platform::relay::republish::{republish_progress, request_republish};
use platform::relay::{Relay, RelayConfig, RepublishProgress, RepublishStatus};
use platform::testing::{test_stream, transaction_in_another_database, TestDb};
use platform::Envelope;
use sqlx::{Connection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SERVICE: &str = "orders";
/// The longest any step waits for the relay.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// One test's database, JetStream connection and stream.
struct Setup {
    db: TestDb,
    jetstream: jetstream::Context,
    stream: StreamSpec,
}

impl Setup {
    async fn new() -> anyhow::Result<Self> {
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS]).await?;
        let client = platform::nats::connect(&platform::testing::nats_url()).await?;
        Ok(Self {
            db,
            jetstream: jetstream::new(client),
            stream: test_stream(SERVICE),
        })
    }

    fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// A relay on its own task; several of them elect one leader.
    fn start_relay(&self) -> (CancellationToken, JoinHandle<anyhow::Result<()>>) {
        let relay = Relay::new(
            SERVICE,
            self.db.pool.clone(),
            self.db.options(),
            self.jetstream.clone(),
            self.stream.clone(),
            RelayConfig {
                batch_size: 64,
                ..RelayConfig::default()
            },
        );
        let shutdown = CancellationToken::new();
        (shutdown.clone(), relay.spawn(shutdown))
    }

    /// Commits `transactions` transactions of `per_transaction` events each, on
    /// aggregates named after `prefix`.
    async fn commit(
        &self,
        prefix: &str,
        transactions: i64,
        per_transaction: i64,
    ) -> anyhow::Result<()> {
        for transaction in 0..transactions {
            let mut tx = self.pool().begin().await?;
            for sequence in 1..=per_transaction {
                sqlx::query(
                    "INSERT INTO events
                         (aggregate_type, aggregate_id, sequence, event_type, event_version,
                          payload, metadata)
                     VALUES ('Order', $1, $2, 'OrderShipped', '1.0', '{\"OrderShipped\":{}}', '{}')",
                )
                .bind(format!("{prefix}-{transaction}"))
                .bind(sequence)
                .execute(&mut *tx)
                .await
                .context("insert an event")?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    async fn stream_count(&self) -> anyhow::Result<u64> {
        match self.jetstream.get_stream(&self.stream.name).await {
            Ok(mut stream) => Ok(stream.info().await?.state.messages),
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(error)
                    if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(0)
                }
                _ => Err(error.into()),
            },
        }
    }

    async fn wait_for_count(&self, expected: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let count = self.stream_count().await?;
            if count >= expected {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the stream holds {count} messages, not {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks for a republish and waits until it is done.
    async fn republish(&self) -> anyhow::Result<RepublishProgress> {
        let requested = request_republish(self.pool(), &self.stream.name).await?;
        assert_ne!(requested.status, RepublishStatus::Done);
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let progress = republish_progress(self.pool(), &self.stream.name)
                .await?
                .context("the request is recorded")?;
            assert!(progress.published <= progress.total, "{progress:?}");
            if progress.status == RepublishStatus::Done {
                return Ok(progress);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the republish is not done: {progress:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `Nats-Msg-Id` of every message, in stream order.
    async fn stream_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .stream_messages()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Every message of the stream in order, as its id and payload.
    async fn stream_messages(&self) -> anyhow::Result<Vec<(String, bytes::Bytes)>> {
        let count = self.stream_count().await?;
        let stream = self.jetstream.get_stream(&self.stream.name).await?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig::default())
            .await?;
        let mut messages = consumer.messages().await?;
        let mut received = Vec::new();
        while (received.len() as u64) < count {
            let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .context("the ordered consumer stalled")?
                .context("the ordered consumer ended")??;
            let id = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("Nats-Msg-Id"))
                .context("a message without Nats-Msg-Id")?
                .to_string();
            received.push((id, message.payload.clone()));
        }
        Ok(received)
    }

    /// The event ids of the log in relay order.
    async fn log_ids(&self) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence FROM events
              ORDER BY transaction_id, global_position",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, id, sequence)| Envelope::event_id_for(SERVICE, &kind, &id, sequence))
            .collect())
    }

    async fn assert_stream_is_the_log(&self) -> anyhow::Result<usize> {
        let (stream, log) = (self.stream_ids().await?, self.log_ids().await?);
        assert_eq!(stream.len(), log.len(), "stream and log differ in size");
        if let Some(at) = stream.iter().zip(&log).position(|(a, b)| a != b) {
            panic!("message {at} is {} where {} belongs", stream[at], log[at]);
        }
        Ok(stream.len())
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.jetstream.delete_stream(&self.stream.name).await?;
        Ok(())
    }
}

async fn stop(
    relays: Vec<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
) -> anyhow::Result<()> {
    for (shutdown, task) in relays {
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .context("a relay did not stop")???;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_stream_gets_the_whole_log_back_once_in_order_even_when_asked_twice(
) -> anyhow::Result<()> {
    let setup = Setup::new().await?;
    // Two replicas: the request reaches whichever leads.
    let relays = vec![setup.start_relay(), setup.start_relay()];
    setup.commit("early", 30, 10).await?;
    setup.wait_for_count(300).await?;

    // The stream is lost; the relay creates it again with only what came after.
    setup.jetstream.delete_stream(&setup.stream.name).await?;
    setup.commit("late", 5, 10).await?;
    setup.wait_for_count(50).await?;
    assert_eq!(setup.stream_count().await?, 50);

    let first = setup.republish().await?;
    assert_eq!((first.total, first.published), (350, 350));
    assert!(
        first.recreated,
        "a stream holding only the tail must be emptied"
    );
    assert_eq!(setup.assert_stream_is_the_log().await?, 350);

    let second = setup.republish().await?;
    assert_eq!((second.total, second.published), (350, 350));
    assert!(!second.recreated, "a complete stream must be kept");
    setup.commit("after", 1, 10).await?;
    setup.wait_for_count(360).await?;
    assert_eq!(setup.assert_stream_is_the_log().await?, 360);

    stop(relays).await?;
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_holding_a_prefix_of_the_log_is_completed_after_it() -> anyhow::Result<()> {
    let setup = Setup::new().await?;
    // A transaction of another database, older than every event, stays open
    // throughout: the relay publishes past it, and so must the republish count.
    let open_elsewhere = transaction_in_another_database(&setup.db.options()).await?;
    let relay = setup.start_relay();
    setup.commit("order", 20, 5).await?;
    setup.wait_for_count(100).await?;
    stop(vec![relay]).await?;

    // The stream is restored from a copy that holds only the first 60 events.
    let messages = setup.stream_messages().await?;
    setup.jetstream.delete_stream(&setup.stream.name).await?;
    platform::nats::ensure_stream(&setup.jetstream, &setup.stream).await?;
    for (id, payload) in messages.into_iter().take(60) {
        let envelope: Envelope = serde_json::from_slice(&payload)?;
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(&id);
        setup
            .jetstream
            .send_publish(setup.stream.subject_for(&envelope), message)
            .await?
            .await?;
    }
    assert_eq!(setup.stream_count().await?, 60);

    let relay = setup.start_relay();
    let progress = setup.republish().await?;
    assert!(!progress.recreated, "a prefix of the log must be kept");
    assert_eq!((progress.total, progress.published), (100, 100));
    assert_eq!(setup.assert_stream_is_the_log().await?, 100);
    stop(vec![relay]).await?;
    open_elsewhere.close().await?;
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_log_is_done_at_once_and_progress_is_unknown_before_a_request(
) -> anyhow::Result<()> {
    let setup = Setup::new().await?;
    assert_eq!(
        republish_progress(setup.pool(), &setup.stream.name).await?,
        None
    );
    let relay = setup.start_relay();
    let progress = setup.republish().await?;
    assert_eq!((progress.total, progress.published), (0, 0));
    stop(vec![relay]).await?;
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_stream_gets_the_whole_log_back_despite_the_duplicate_window() -> anyhow::Result<()>
{
    let setup = Setup::new().await?;
    let relay = setup.start_relay();
    setup.commit("order", 10, 10).await?;
    setup.wait_for_count(100).await?;
    setup
        .jetstream
        .get_stream(&setup.stream.name)
        .await?
        .purge()
        .await?;
    assert_eq!(setup.stream_count().await?, 0);

    let progress = setup.republish().await?;
    assert!(
        progress.recreated,
        "a purged stream still dedups its old ids"
    );
    assert_eq!(setup.assert_stream_is_the_log().await?, 100);
    stop(vec![relay]).await?;
    setup.finish().await
}

//! What a consumer does when a batch does not commit.
//!
//! - A [`SequenceGap`] ends the attempts: the consumer rewinds to fetch the
//!   missing event first.
//! - Infrastructure failures (a lost connection, a pool timeout, PostgreSQL
//!   shutting down, `BEGIN` or `COMMIT` failing) are retried with backoff for as
//!   long as they last. An outage of PostgreSQL must not dead-letter every event
//!   in flight.
//! - A handler error isolates the batch's events: the batch is applied again with
//!   a savepoint per event, so the others commit while the failing event, and the
//!   later events of its aggregate (to keep their order), are retried with
//!   backoff. After `max_attempts` failures the event is parked in `dead_letters`
//!   with its error, its aggregate offset is recorded as applied, and the consumer
//!   carries on.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use async_nats::jetstream::AckKind;
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{apply_once, save_checkpoint, Backoff, Commit, Consumer, Delivery, SequenceGap};
use crate::dead_letters::{self, Parked};
use crate::Envelope;

/// A handler's error for one event, with whether its cause is infrastructure
/// (which never counts toward parking) rather than the handler itself.
#[derive(Debug, thiserror::Error)]
#[error("{error:#}")]
pub(super) struct HandlerFailed {
    error: anyhow::Error,
    infrastructure: bool,
    /// The event at fault, when the handler was given one event.
    event_id: Option<String>,
}

impl HandlerFailed {
    /// Wraps what the handler returned for `envelope`, sorting out its cause once.
    pub(super) fn new(error: anyhow::Error, envelope: &Envelope) -> Self {
        let infrastructure = is_infrastructure(&error);
        Self {
            error,
            infrastructure,
            event_id: Some(envelope.event_id.clone()),
        }
    }

    /// Wraps what [`super::Handler::apply_all`] returned for a whole batch, unless
    /// it already names the event at fault.
    pub(super) fn of_batch(error: anyhow::Error) -> anyhow::Error {
        if error.chain().any(|cause| cause.is::<HandlerFailed>()) {
            return error;
        }
        let infrastructure = is_infrastructure(&error);
        Self {
            error,
            infrastructure,
            event_id: None,
        }
        .into()
    }
}

/// Whether an error comes from the connection to PostgreSQL rather than from what
/// was asked of it: I/O, TLS and protocol errors, pool timeouts, and the SQLSTATE
/// classes 08 (connection exception), 40 (transaction rollback: a deadlock or a
/// serialization failure, which another attempt does not meet again), 53
/// (insufficient resources) and 57 (operator intervention, such as
/// `pg_terminate_backend` or a shutdown).
pub(crate) fn is_infrastructure(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(error) = cause.downcast_ref::<sqlx::Error>() {
            return is_infrastructure_sqlx(error);
        }
        cause.is::<std::io::Error>()
    })
}

fn is_infrastructure_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            ["08", "40", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        _ => false,
    }
}

/// What went wrong with an attempt, which decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Gap,
    Infrastructure,
    Handler,
}

fn classify(error: &anyhow::Error) -> Failure {
    if error.is::<SequenceGap>() {
        return Failure::Gap;
    }
    match handler_failure(error) {
        Some(failed) if !failed.infrastructure => Failure::Handler,
        _ => Failure::Infrastructure,
    }
}

fn handler_failure(error: &anyhow::Error) -> Option<&HandlerFailed> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<HandlerFailed>())
}

/// One event's failed attempts so far.
struct Attempts {
    count: u32,
    first_failed_at: DateTime<Utc>,
    error: String,
}

/// The failed attempts of a batch's events, by event id.
#[derive(Default)]
struct Failures(HashMap<String, Attempts>);

impl Failures {
    /// Counts a handler failure of the event that `error` names.
    fn record(&mut self, error: &anyhow::Error) {
        let Some(event_id) = handler_failure(error).and_then(|f| f.event_id.clone()) else {
            return;
        };
        let attempts = self.0.entry(event_id).or_insert_with(|| Attempts {
            count: 0,
            first_failed_at: Utc::now(),
            error: String::new(),
        });
        attempts.count += 1;
        attempts.error = format!("{error:#}");
    }

    /// Whether the event has failed `max_attempts` times.
    fn exhausted(&self, event_id: &str, max_attempts: u32) -> bool {
        self.0
            .get(event_id)
            .is_some_and(|attempts| attempts.count >= max_attempts)
    }
}

/// How a pass over a batch ended: events applied, and events held back for
/// another attempt.
struct Pass {
    applied: u64,
    held: usize,
}

/// Applies the batch until every event is applied or parked. The first attempt
/// applies it whole in one transaction; after a handler error, each attempt
/// applies it event by event (see the module documentation).
pub(super) async fn commit(
    consumer: &Consumer,
    batch: &[Delivery],
    shutdown: &CancellationToken,
) -> Commit {
    let mut backoff = Backoff::starting_at(consumer.config.retry_backoff);
    let mut failures = Failures::default();
    let mut isolating = false;
    loop {
        let outcome = if isolating {
            apply_isolated(consumer, batch, &mut failures).await
        } else {
            consumer
                .apply_batch(batch)
                .await
                .map(|applied| Pass { applied, held: 0 })
        };
        match outcome {
            Ok(Pass { applied, held: 0 }) => {
                tracing::debug!(received = batch.len(), applied, "batch committed");
                return Commit::Done;
            }
            Ok(Pass { applied, held }) => tracing::warn!(
                applied,
                held,
                retry_in_ms = backoff.0.as_millis() as u64,
                "an event keeps failing; it and the later events of its aggregate wait",
            ),
            Err(error) => match classify(&error) {
                Failure::Gap => {
                    tracing::warn!(error = format!("{error:#}"), "sequence gap, rewinding");
                    return Commit::Gap;
                }
                Failure::Handler if !isolating => {
                    failures.record(&error);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        retry_in_ms = backoff.0.as_millis() as u64,
                        "an event failed; the batch will be applied event by event",
                    );
                    isolating = true;
                }
                Failure::Handler | Failure::Infrastructure => tracing::error!(
                    error = format!("{error:#}"),
                    retry_in_ms = backoff.0.as_millis() as u64,
                    "batch rolled back",
                ),
            },
        }
        keep_in_progress(batch).await;
        if !backoff.wait(shutdown).await {
            return Commit::Cancelled;
        }
    }
}

/// Applies each event of the batch under its own savepoint, in one transaction.
/// An event the handler fails on is rolled back alone; after its last attempt it
/// is parked, otherwise it and the later events of its aggregate are held for the
/// next pass. The checkpoint stops short of the first event held, so it never
/// claims one that is not applied yet.
async fn apply_isolated(
    consumer: &Consumer,
    batch: &[Delivery],
    failures: &mut Failures,
) -> anyhow::Result<Pass> {
    let config = &consumer.config;
    let mut tx = crate::db::begin(&consumer.pool)
        .await
        .context("begin batch transaction")?;
    // As in `apply_batch`: a rebuild's consumer writes into its own schema.
    if let Some(search_path) = &config.search_path {
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(search_path)
            .execute(&mut *tx)
            .await
            .context("set the batch's search_path")?;
    }
    let mut waiting: HashSet<(&str, &str)> = HashSet::new();
    let mut first_held: Option<u64> = None;
    let (mut applied, mut parked, mut held) = (0, 0, 0);
    for delivery in batch {
        let envelope = &delivery.envelope;
        let aggregate = (
            envelope.aggregate_type.as_str(),
            envelope.aggregate_id.as_str(),
        );
        if waiting.contains(&aggregate) {
            held += 1;
            first_held.get_or_insert(delivery.stream_sequence);
            continue;
        }
        if failures.exhausted(&envelope.event_id, config.max_attempts) {
            park(&mut tx, consumer, delivery, failures).await?;
            parked += 1;
            continue;
        }
        let span = tracing::info_span!(
            "event",
            event_id = %envelope.event_id,
            correlation_id = envelope.correlation_id().unwrap_or(""),
        );
        let mut savepoint = Connection::begin(&mut *tx)
            .await
            .context("begin a savepoint")?;
        let outcome = apply_once(&*consumer.handler, config, &mut savepoint, envelope)
            .instrument(span)
            .await;
        let error = match outcome {
            Ok(is_new) => {
                savepoint.commit().await.context("release a savepoint")?;
                applied += u64::from(is_new);
                continue;
            }
            Err(error) => error,
        };
        savepoint
            .rollback()
            .await
            .context("roll back to the savepoint")?;
        let error = error.context(format!("apply event {}", envelope.event_id));
        if classify(&error) != Failure::Handler {
            return Err(error);
        }
        failures.record(&error);
        if failures.exhausted(&envelope.event_id, config.max_attempts) {
            park(&mut tx, consumer, delivery, failures).await?;
            parked += 1;
            continue;
        }
        tracing::warn!(error = format!("{error:#}"), "event failed");
        waiting.insert(aggregate);
        held += 1;
        first_held.get_or_insert(delivery.stream_sequence);
    }
    if applied == 0 && parked == 0 {
        // Nothing to record. Writing the checkpoint alone would turn a pass that
        // only read into a writing transaction as old as the handlers' run, which
        // decision 0007 keeps short.
        tx.rollback().await.context("roll back an idle pass")?;
        return Ok(Pass { applied, held });
    }
    let last = batch.iter().map(|d| d.stream_sequence).max().unwrap_or(0);
    let checkpoint = first_held.map_or(last, |sequence| sequence.saturating_sub(1));
    save_checkpoint(config, &mut tx, checkpoint, applied).await?;
    tx.commit().await.context("commit batch")?;
    Ok(Pass { applied, held })
}

/// Parks the event as a dead letter and records its aggregate offset as applied,
/// so that the later events of its aggregate go on.
async fn park(
    tx: &mut PgConnection,
    consumer: &Consumer,
    delivery: &Delivery,
    failures: &mut Failures,
) -> anyhow::Result<()> {
    let envelope = &delivery.envelope;
    let Some(failed) = failures.0.remove(&envelope.event_id) else {
        anyhow::bail!("no failure recorded for {}", envelope.event_id);
    };
    let parked = Parked {
        consumer: &consumer.config.durable_name,
        stream: &consumer.config.stream.name,
        stream_seq: delivery.stream_sequence,
        envelope,
        error: &failed.error,
        attempts: failed.count,
        first_failed_at: failed.first_failed_at,
    };
    dead_letters::park(tx, &parked).await?;
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, aggregate_type, aggregate_id, last_sequence)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (consumer, aggregate_type, aggregate_id)
         DO UPDATE SET last_sequence = GREATEST(consumer_offsets.last_sequence, EXCLUDED.last_sequence)",
    )
    .bind(&consumer.config.durable_name)
    .bind(&envelope.aggregate_type)
    .bind(&envelope.aggregate_id)
    .bind(envelope.sequence)
    .execute(&mut *tx)
    .await
    .context("record the parked event's offset")?;
    tracing::error!(
        event_id = %envelope.event_id,
        attempts = failed.count,
        error = %failed.error,
        "event parked as a dead letter",
    );
    Ok(())
}

/// Tells JetStream the batch is still being worked on, so that it does not
/// redeliver it while the consumer waits between attempts.
async fn keep_in_progress(batch: &[Delivery]) {
    for delivery in batch {
        if let Err(error) = delivery.message.ack_with(AckKind::Progress).await {
            tracing::debug!(%error, "progress ack failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_infrastructure;
    use crate::testing::TestDb;

    /// Two transactions that lock two rows in opposite orders: PostgreSQL aborts
    /// one of them with a deadlock (40P01), which it returns.
    async fn deadlock(db: &TestDb) -> sqlx::Error {
        sqlx::raw_sql("CREATE TABLE pair (id int PRIMARY KEY); INSERT INTO pair VALUES (1), (2)")
            .execute(&db.pool)
            .await
            .expect("create the rows");
        let lock_both = |first: i32, second: i32| {
            let pool = db.pool.clone();
            async move {
                let mut tx = pool.begin().await?;
                let lock = "SELECT id FROM pair WHERE id = $1 FOR UPDATE";
                sqlx::query(lock).bind(first).execute(&mut *tx).await?;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                sqlx::query(lock).bind(second).execute(&mut *tx).await?;
                tx.commit().await
            }
        };
        let (one, other) = tokio::join!(lock_both(1, 2), lock_both(2, 1));
        one.err().or(other.err()).expect("one of them deadlocked")
    }

    #[tokio::test]
    async fn a_deadlock_is_retried_rather_than_parked() {
        let db = TestDb::new(&[]).await.expect("test database");
        let error = deadlock(&db).await;
        let code = error
            .as_database_error()
            .and_then(|e| e.code().map(|c| c.into_owned()));
        assert_eq!(code.as_deref(), Some("40P01"));
        assert!(is_infrastructure(&anyhow::Error::new(error)));
    }

    #[tokio::test]
    async fn a_failing_statement_is_the_handlers_fault() {
        let db = TestDb::new(&[]).await.expect("test database");
        let error = sqlx::query("SELECT 1 / 0")
            .execute(&db.pool)
            .await
            .unwrap_err();
        assert!(!is_infrastructure(&anyhow::Error::new(error)));
    }
}

//! Republishing a service's whole log into its stream, on request (`shop relay
//! republish`): after the stream was lost or purged, or when it holds only part of
//! the log. Safe to ask for twice: the stream ends with exactly one message per
//! event, in relay order.
//!
//! Any replica records the request in `relay_republish`; only the relay that holds
//! the advisory lock carries it out, between two batches, so nothing else publishes
//! meanwhile. It looks at what the stream holds:
//! - nothing: the checkpoint goes back to the start of the log;
//! - a prefix of the log (its first message is the log's first event, its last one
//!   is event N, and it holds N messages): the checkpoint goes back to just after
//!   event N, so nothing is published twice whatever the duplicate window;
//! - anything else, such as only the events published since the stream was lost:
//!   the stream is deleted and created again, and the whole log goes back in. A
//!   purge would not do: NATS 2.9.10 keeps the purged messages' ids in its
//!   duplicate window and drops them when they come again (measured). Consumers
//!   notice the lost stream, subscribe again from its start, and skip what they
//!   have applied.
//!
//! The normal relay loop then publishes from there, with its ordering guard, and
//! counts progress until it reaches the log's last event as of the request.

use anyhow::Context;
use async_nats::jetstream;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};

use super::outbox::{Checkpoint, HORIZON};
use crate::nats::StreamSpec;

/// The status of a republish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RepublishStatus {
    /// Recorded; the relay leader takes it up within its poll interval.
    Requested,
    /// The relay is publishing the log again.
    Running,
    /// The stream holds every event up to the log's end as of the start.
    Done,
}

/// A republish and how far it has got: the answer of
/// `POST|GET /api/admin/relay/republish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepublishProgress {
    /// The stream the service's relay writes, such as `ORDERS`.
    pub stream: String,
    /// Where the republish stands.
    pub status: RepublishStatus,
    /// Events of the log up to its end when the republish started.
    pub total: i64,
    /// How many of them the stream holds so far: those it already held in order,
    /// plus those published again.
    pub published: i64,
    /// Whether the stream held something other than a prefix of the log, and was
    /// deleted and created empty before the log went back in.
    pub recreated: bool,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the relay leader took it up.
    pub started_at: Option<DateTime<Utc>>,
    /// When the stream had caught up.
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ProgressRow {
    stream: String,
    status: String,
    total: i64,
    published: i64,
    recreated: bool,
    requested_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<ProgressRow> for RepublishProgress {
    type Error = anyhow::Error;

    fn try_from(row: ProgressRow) -> anyhow::Result<Self> {
        let status = match row.status.as_str() {
            "REQUESTED" => RepublishStatus::Requested,
            "RUNNING" => RepublishStatus::Running,
            "DONE" => RepublishStatus::Done,
            other => anyhow::bail!("unknown republish status {other:?}"),
        };
        Ok(Self {
            stream: row.stream,
            status,
            total: row.total,
            published: row.published,
            recreated: row.recreated,
            requested_at: row.requested_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

/// Records a request to republish `stream_name` and wakes the relay. A republish
/// already requested or running is left as it is, so asking twice starts one.
pub async fn request_republish(
    pool: &PgPool,
    stream_name: &str,
) -> anyhow::Result<RepublishProgress> {
    sqlx::query(
        "INSERT INTO relay_republish (stream, status) VALUES ($1, 'REQUESTED')
         ON CONFLICT (stream) DO UPDATE
            SET status = 'REQUESTED', requested_at = now(), started_at = NULL,
                finished_at = NULL, target_transaction_id = NULL,
                target_global_position = NULL, total = 0, published = 0, recreated = false
          WHERE relay_republish.status = 'DONE'",
    )
    .bind(stream_name)
    .execute(pool)
    .await
    .context("record the republish request")?;
    // The relay listens on this channel; without it, it looks at its next poll.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(super::outbox::CHANNEL)
        .bind(super::outbox::REPUBLISH_REQUESTED)
        .execute(pool)
        .await
        .context("wake the relay")?;
    republish_progress(pool, stream_name)
        .await?
        .context("the republish request is gone")
}

/// The latest republish of `stream_name`, if one was ever requested.
pub async fn republish_progress(
    pool: &PgPool,
    stream_name: &str,
) -> anyhow::Result<Option<RepublishProgress>> {
    let row: Option<ProgressRow> = sqlx::query_as(
        "SELECT stream, status, total, published, recreated, requested_at, started_at, finished_at
           FROM relay_republish WHERE stream = $1",
    )
    .bind(stream_name)
    .fetch_optional(pool)
    .await
    .context("read the republish progress")?;
    row.map(RepublishProgress::try_from).transpose()
}

/// A republish the leader has to take up or carry on.
pub(super) enum Pending {
    /// Requested, not started.
    Requested,
    /// Started by this or an earlier leader; done once the checkpoint reaches it.
    Running { target: Checkpoint },
}

/// The republish of `stream_name` that is not done yet, if any.
pub(super) async fn pending(pool: &PgPool, stream_name: &str) -> anyhow::Result<Option<Pending>> {
    let row: Option<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT status, target_transaction_id::text::bigint, target_global_position
           FROM relay_republish WHERE stream = $1 AND status <> 'DONE'",
    )
    .bind(stream_name)
    .fetch_optional(pool)
    .await
    .context("look for a republish request")?;
    Ok(row.map(|(status, transaction_id, global_position)| {
        match (status.as_str(), transaction_id, global_position) {
            ("RUNNING", Some(transaction_id), Some(global_position)) => Pending::Running {
                target: Checkpoint {
                    transaction_id,
                    global_position,
                },
            },
            _ => Pending::Requested,
        }
    }))
}

/// Where a started republish publishes from, and up to where it counts progress;
/// `target` is `None` when the stream already holds the whole log.
pub(super) struct Started {
    pub(super) from: Checkpoint,
    pub(super) target: Option<Checkpoint>,
}

/// Takes up a requested republish: finds what the stream holds, recreates it
/// empty unless it is a prefix of the log, and moves the checkpoint back, through the leader's
/// lock connection, in the same transaction that marks the republish running.
pub(super) async fn start(
    lock_connection: &mut PgConnection,
    pool: &PgPool,
    jetstream: &jetstream::Context,
    spec: &StreamSpec,
) -> anyhow::Result<Started> {
    let end = last_committed(pool).await?;
    let mut stream = crate::nats::ensure_stream(jetstream, spec).await?;
    let kept = held_prefix(&mut stream, pool).await?;
    let recreated = kept.is_none();
    if recreated {
        jetstream
            .delete_stream(&spec.name)
            .await
            .with_context(|| format!("delete stream {}", spec.name))?;
        crate::nats::ensure_stream(jetstream, spec).await?;
    }
    let from = kept.unwrap_or_default();
    let total = events_up_to(pool, end.unwrap_or_default()).await?;
    let published = events_up_to(pool, from).await?;
    let target = end.filter(|end| position(*end) > position(from));
    let mut tx = lock_connection
        .begin()
        .await
        .context("begin the republish start")?;
    sqlx::query(
        "INSERT INTO relay_checkpoints (stream, transaction_id, global_position)
         VALUES ($1, $2::text::xid8, $3)
         ON CONFLICT (stream) DO UPDATE
            SET transaction_id = EXCLUDED.transaction_id,
                global_position = EXCLUDED.global_position, updated_at = now()",
    )
    .bind(&spec.name)
    .bind(from.transaction_id)
    .bind(from.global_position)
    .execute(&mut *tx)
    .await
    .context("move the relay checkpoint back")?;
    let target_bind = target.unwrap_or(from);
    sqlx::query(
        "UPDATE relay_republish
            SET status = CASE WHEN $2 THEN 'RUNNING' ELSE 'DONE' END,
                started_at = now(),
                finished_at = CASE WHEN $2 THEN NULL ELSE now() END,
                target_transaction_id = $3::text::xid8, target_global_position = $4,
                total = $5, published = $6, recreated = $7
          WHERE stream = $1",
    )
    .bind(&spec.name)
    .bind(target.is_some())
    .bind(target_bind.transaction_id)
    .bind(target_bind.global_position)
    .bind(total)
    .bind(published)
    .bind(recreated)
    .execute(&mut *tx)
    .await
    .context("mark the republish running")?;
    tx.commit().await.context("commit the republish start")?;
    tracing::info!(
        stream = %spec.name,
        total,
        kept = published,
        recreated,
        "republishing the log"
    );
    Ok(Started { from, target })
}

/// Counts a published batch towards the republish; returns whether it is done,
/// which is when `checkpoint` has reached `target`.
pub(super) async fn advance(
    lock_connection: &mut PgConnection,
    stream_name: &str,
    target: Checkpoint,
    checkpoint: Checkpoint,
    events: usize,
) -> anyhow::Result<bool> {
    let done = position(checkpoint) >= position(target);
    sqlx::query(
        "UPDATE relay_republish
            SET published = CASE WHEN $3 THEN total ELSE LEAST(total, published + $2) END,
                status = CASE WHEN $3 THEN 'DONE' ELSE status END,
                finished_at = CASE WHEN $3 THEN now() ELSE finished_at END
          WHERE stream = $1 AND status = 'RUNNING'",
    )
    .bind(stream_name)
    .bind(i64::try_from(events).unwrap_or(i64::MAX))
    .bind(done)
    .execute(lock_connection)
    .await
    .context("record the republish progress")?;
    if done {
        tracing::info!(stream = stream_name, "republish done");
    }
    Ok(done)
}

fn position(checkpoint: Checkpoint) -> (i64, i64) {
    (checkpoint.transaction_id, checkpoint.global_position)
}

/// The last event of the log that the relay may publish now. It is read below
/// the same [`HORIZON`] as the relay's batches, so that it never falls short of
/// what the relay has published already.
async fn last_committed(pool: &PgPool) -> anyhow::Result<Option<Checkpoint>> {
    let sql = format!(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position FROM events
          WHERE transaction_id < {HORIZON}
          ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
    );
    sqlx::query_as(&sql)
        .fetch_optional(pool)
        .await
        .context("find the end of the log")
}

/// How many events of the log come at or before `checkpoint` in relay order.
async fn events_up_to(pool: &PgPool, checkpoint: Checkpoint) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE (transaction_id, global_position) <= ($1::text::xid8, $2)",
    )
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .fetch_one(pool)
    .await
    .context("count the log's events")
}

/// The log position of the stream's last message when the stream holds exactly a
/// prefix of the log; the start of the log when it never held anything; `None`
/// otherwise.
async fn held_prefix(
    stream: &mut jetstream::stream::Stream,
    pool: &PgPool,
) -> anyhow::Result<Option<Checkpoint>> {
    let state = stream
        .info()
        .await
        .context("read the stream state")?
        .state
        .clone();
    if state.messages == 0 {
        // A purged stream still remembers the purged ids for its duplicate window,
        // so only a stream that never held anything counts as empty.
        return Ok((state.last_sequence == 0).then_some(Checkpoint::default()));
    }
    let first = message_position(stream, pool, state.first_sequence).await?;
    let last = message_position(stream, pool, state.last_sequence).await?;
    let log_first = sqlx::query_as::<_, Checkpoint>(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position FROM events
          ORDER BY events.transaction_id, events.global_position LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .context("find the start of the log")?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    if Some(first) != log_first {
        return Ok(None);
    }
    let expected = events_up_to(pool, last).await?;
    Ok((u64::try_from(expected).ok() == Some(state.messages)).then_some(last))
}

/// The log position of the event that the message at `sequence` carries, or `None`
/// when it names no event of this log.
async fn message_position(
    stream: &jetstream::stream::Stream,
    pool: &PgPool,
    sequence: u64,
) -> anyhow::Result<Option<Checkpoint>> {
    let message = stream
        .get_raw_message(sequence)
        .await
        .with_context(|| format!("read stream message {sequence}"))?;
    let Some(event_id) = message.headers.get("Nats-Msg-Id") else {
        return Ok(None);
    };
    let Some((aggregate_type, aggregate_id, event_sequence)) = parse_event_id(event_id.as_str())
    else {
        return Ok(None);
    };
    sqlx::query_as(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(event_sequence)
    .fetch_optional(pool)
    .await
    .context("find a stream message's event in the log")
}

/// The aggregate type, id and sequence of an event id
/// `<service>:<AggregateType>:<aggregate_id>:<sequence>`.
fn parse_event_id(event_id: &str) -> Option<(&str, &str, i64)> {
    let (rest, sequence) = event_id.rsplit_once(':')?;
    let (_service, rest) = rest.split_once(':')?;
    let (aggregate_type, aggregate_id) = rest.split_once(':')?;
    Some((aggregate_type, aggregate_id, sequence.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_names_its_aggregate_and_sequence() {
        assert_eq!(
            parse_event_id("orders:Order:0190-ab:12"),
            Some(("Order", "0190-ab", 12))
        );
        assert_eq!(parse_event_id("orders:Order:12"), None);
        assert_eq!(parse_event_id("orders:Order:x:twelve"), None);
    }
}

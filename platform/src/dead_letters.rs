//! Dead letters: events a consumer parked because its handler kept failing on
//! them, so that the events behind them could go on. Operators list them and,
//! once the cause is fixed, retry them through the same handler.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};

use crate::consumer::Handler;
use crate::Envelope;

/// One parked event, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The dead letter's id, which its retry names.
    pub id: i64,
    /// The durable consumer that parked it, such as `inventory-saga`.
    pub consumer: String,
    /// The event's id: `<service>:<AggregateType>:<aggregate_id>:<sequence>`.
    pub event_id: String,
    /// The event's name, such as `OrderPlaced`.
    pub event_type: String,
    /// The aggregate type, such as `Order`.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// The event's position within its aggregate.
    pub sequence: i64,
    /// The event's position in the stream it was read from.
    pub stream_seq: i64,
    /// The handler's last error, with its causes.
    pub error: String,
    /// How many times the handler failed on it, retries included.
    pub attempts: i32,
    /// When the handler first failed on it.
    pub first_failed_at: DateTime<Utc>,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

/// The answer of `GET /api/admin/dead-letters`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    /// The service's dead letters, oldest first.
    pub items: Vec<DeadLetter>,
}

/// An event to park, with how it failed.
pub(crate) struct Parked<'a> {
    pub consumer: &'a str,
    pub stream: &'a str,
    pub stream_seq: u64,
    pub envelope: &'a Envelope,
    pub error: &'a str,
    pub attempts: u32,
    pub first_failed_at: DateTime<Utc>,
}

/// Writes a dead letter inside the consumer's transaction. Parking the same event
/// again (after a replay) adds its attempts and keeps the latest error.
pub(crate) async fn park(tx: &mut PgConnection, parked: &Parked<'_>) -> anyhow::Result<()> {
    let envelope = parked.envelope;
    sqlx::query(
        "INSERT INTO dead_letters (consumer, stream, stream_seq, event_id, event_type,
                                   aggregate_type, aggregate_id, sequence, envelope, error,
                                   attempts, first_failed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (consumer, event_id) DO UPDATE
            SET error = EXCLUDED.error,
                attempts = dead_letters.attempts + EXCLUDED.attempts,
                parked_at = now()",
    )
    .bind(parked.consumer)
    .bind(parked.stream)
    .bind(i64::try_from(parked.stream_seq).context("stream sequence out of range")?)
    .bind(&envelope.event_id)
    .bind(&envelope.event_type)
    .bind(&envelope.aggregate_type)
    .bind(&envelope.aggregate_id)
    .bind(envelope.sequence)
    .bind(sqlx::types::Json(envelope))
    .bind(parked.error)
    .bind(i32::try_from(parked.attempts).unwrap_or(i32::MAX))
    .bind(parked.first_failed_at)
    .execute(tx)
    .await
    .context("park the event as a dead letter")?;
    Ok(())
}

/// Why a retry did not apply a dead letter.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No dead letter has this id.
    #[error("no dead letter has id {0}")]
    NotFound(i64),
    /// The consumer that parked it has no handler in this process.
    #[error("consumer {0} has no handler in this service")]
    UnknownConsumer(String),
    /// The handler failed again; the dead letter is kept with the new error.
    #[error("{0}")]
    StillFailing(String),
    /// The database failed; nothing changed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// The dead letters of one database, and the handlers that can retry them, by
/// the durable name of the consumer that parked them.
#[derive(Clone)]
pub struct DeadLetters {
    pool: PgPool,
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl DeadLetters {
    /// The dead letters in the database behind `pool` (it holds the read-model
    /// migrations), with no handlers yet.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            handlers: HashMap::new(),
        }
    }

    /// Adds the handler of the consumer with this durable name.
    pub fn with_handler(
        mut self,
        durable_name: impl Into<String>,
        handler: Arc<dyn Handler>,
    ) -> Self {
        self.handlers.insert(durable_name.into(), handler);
        self
    }

    /// Every dead letter, oldest first.
    pub async fn list(&self) -> anyhow::Result<Vec<DeadLetter>> {
        sqlx::query_as(
            "SELECT id, consumer, event_id, event_type, aggregate_type, aggregate_id, sequence,
                    stream_seq, error, attempts, first_failed_at, parked_at
               FROM dead_letters ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context("list the dead letters")
    }

    /// Applies a dead letter's event again through its consumer's handler, in one
    /// transaction, whatever its aggregate's offset says; on success the dead
    /// letter is deleted. When the handler fails again, the dead letter is kept
    /// with one more attempt and the new error.
    pub async fn retry(&self, id: i64) -> Result<DeadLetter, RetryError> {
        let mut tx = crate::db::begin(&self.pool)
            .await
            .context("begin the retry")?;
        // Locked, so that two retries of one dead letter cannot both apply it.
        let row: Option<(sqlx::types::Json<Envelope>, String)> =
            sqlx::query_as("SELECT envelope, consumer FROM dead_letters WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context("read the dead letter")?;
        let (sqlx::types::Json(envelope), consumer) = row.ok_or(RetryError::NotFound(id))?;
        let handler = self
            .handlers
            .get(&consumer)
            .ok_or_else(|| RetryError::UnknownConsumer(consumer.clone()))?;
        let mut savepoint = Connection::begin(&mut *tx)
            .await
            .context("begin a savepoint")?;
        match handler.apply(&mut savepoint, &envelope).await {
            Ok(()) => savepoint.commit().await.context("release the savepoint")?,
            Err(error) if crate::consumer::is_infrastructure(&error) => {
                return Err(RetryError::Store(error.context("apply the event")));
            }
            Err(error) => {
                savepoint.rollback().await.context("roll back the retry")?;
                let error = format!("{error:#}");
                sqlx::query(
                    "UPDATE dead_letters SET attempts = attempts + 1, error = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(&error)
                .execute(&mut *tx)
                .await
                .context("record the failed retry")?;
                tx.commit().await.context("commit the failed retry")?;
                tracing::warn!(id, event_id = %envelope.event_id, %error, "retry failed");
                return Err(RetryError::StillFailing(error));
            }
        }
        let letter: DeadLetter = sqlx::query_as(
            "DELETE FROM dead_letters WHERE id = $1
             RETURNING id, consumer, event_id, event_type, aggregate_type, aggregate_id,
                       sequence, stream_seq, error, attempts, first_failed_at, parked_at",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .context("delete the dead letter")?;
        tx.commit().await.context("commit the retry")?;
        tracing::info!(id, event_id = %envelope.event_id, "dead letter applied");
        Ok(letter)
    }
}

//! postgres-es's repository with one change: a command's events are appended by a
//! single `INSERT` statement, which PostgreSQL runs as a transaction of its own.
//!
//! postgres-es sends `BEGIN`, one `INSERT` per event, then `COMMIT`: three round
//! trips for the usual command of one event, each waking the service's backend
//! and the service once more. One statement is just as atomic, since a statement
//! that fails writes none of its rows, and the events table's primary key still
//! refuses an append to a stale aggregate. Reads and snapshots stay postgres-es's.
//!
//! While the relay of the same process leads, the statement also turns off the
//! events trigger's `NOTIFY` for itself and the relay is woken in memory (see
//! [`crate::relay::RelayWake`]).

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

use crate::relay::RelayWake;

/// Appends the batch's events in order: `global_position` is drawn row by row as
/// the sorted rows are inserted, so it follows each aggregate's sequence. `$8` is
/// `on` to turn the trigger's `NOTIFY` off: the setting is made, for this
/// statement's transaction only, before its first row, and the trigger runs after
/// its last (migration `0009_relay_woken_in_process.sql`).
const APPEND: &str = "\
    WITH quiet AS (SELECT set_config('shop.relay_woken_in_process', $8, true)) \
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
    SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, e.metadata::json \
    FROM quiet, unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[]) \
        WITH ORDINALITY AS e(sequence, event_type, event_version, payload, metadata, n) \
    ORDER BY e.n";

/// The event repository of [`super::AggregateStore`].
pub(super) struct EventRepository {
    postgres_es: PostgresEventRepository,
    pool: PgPool,
    relay_wake: Option<RelayWake>,
}

impl EventRepository {
    pub(super) fn new(pool: PgPool) -> Self {
        Self {
            postgres_es: PostgresEventRepository::new(pool.clone()),
            pool,
            relay_wake: None,
        }
    }

    pub(super) fn with_relay_wake(self, wake: RelayWake) -> Self {
        Self {
            relay_wake: Some(wake),
            ..self
        }
    }

    async fn append<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
        let event_types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let versions: Vec<&str> = events.iter().map(|e| e.event_version.as_str()).collect();
        let payloads: Vec<&Value> = events.iter().map(|e| &e.payload).collect();
        let metadata: Vec<&Value> = events.iter().map(|e| &e.metadata).collect();
        let wake = self
            .relay_wake
            .as_ref()
            .filter(|wake| wake.relay_leads_here());
        sqlx::query(APPEND)
            .bind(A::TYPE)
            .bind(&first.aggregate_id)
            .bind(sequences)
            .bind(event_types)
            .bind(versions)
            .bind(payloads)
            .bind(metadata)
            .bind(if wake.is_some() { "on" } else { "off" })
            .execute(&self.pool)
            .await
            .map_err(persistence_error)?;
        if let Some(wake) = wake {
            wake.appended();
        }
        Ok(())
    }
}

/// The errors as postgres-es reports them: a duplicate key is a lost race for the
/// aggregate's next sequence, a broken connection is the database's fault.
fn persistence_error(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(database) if database.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            PersistenceError::ConnectionError(Box::new(error))
        }
        _ => PersistenceError::UnknownError(Box::new(error)),
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.postgres_es.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.postgres_es
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.postgres_es.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match snapshot_update {
            // Events and a snapshot are two tables: postgres-es's transaction.
            Some(_) => self.postgres_es.persist::<A>(events, snapshot_update).await,
            None => self.append::<A>(events).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.postgres_es.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.postgres_es.stream_all_events::<A>().await
    }
}

//! The command side's event store: cqrs-es aggregates persisted in postgres-es's
//! schema in the service's own database, plus reading the stored log back as
//! [`Envelope`]s.

mod cache;
mod repository;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::{
    EventStoreAggregateContext, EventUpcaster, PersistedEventRepository as _, PersistedEventStore,
    SerializedEvent,
};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore as _};
use domain::versioning::{self, VersionedEvent};
use sqlx::PgPool;

use crate::envelope::{untag_payload, AggregateState, Envelope, CAUSATION_ID, CORRELATION_ID};
use cache::AggregateCache;
use repository::EventRepository;

/// How often a command without `If-Match` is tried when other writers keep
/// appending to the same aggregate between its load and its commit.
const CONFLICT_ATTEMPTS: u32 = 20;

/// Why and for whom a command runs; it becomes the metadata of every event it writes.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// The id of the request that started the chain (`X-Request-Id`).
    pub correlation_id: String,
    /// The id of the command or event that caused this command.
    pub causation_id: String,
    /// The version the caller expects the aggregate to have (`If-Match`).
    pub expected_version: Option<i64>,
}

impl CommandContext {
    fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            (CORRELATION_ID.to_owned(), self.correlation_id.clone()),
            (CAUSATION_ID.to_owned(), self.causation_id.clone()),
        ])
    }
}

/// Why a command wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused the command: a broken business rule.
    #[error(transparent)]
    Rejected(E),
    /// `If-Match` named another version than the aggregate has.
    #[error("expected version {expected}, but the aggregate is at version {actual}")]
    VersionMismatch {
        /// The version the caller sent.
        expected: i64,
        /// The version the aggregate has.
        actual: i64,
    },
    /// Other writers kept appending to the aggregate; the caller may retry.
    #[error("the aggregate was changed concurrently")]
    Conflict,
    /// The store failed: a fault of ours, not of the caller.
    #[error("event store failure")]
    Store(#[source] anyhow::Error),
}

/// An aggregate type's event store in one service's database. It keeps the
/// aggregates it wrote recently in memory (see [`cache`]), so that a command on
/// one of them reads nothing before it appends.
pub struct AggregateStore<A: Aggregate> {
    service: &'static str,
    store: PersistedEventStore<EventRepository, A>,
    pool: PgPool,
    services: A::Services,
    cache: AggregateCache<A>,
}

impl<A> AggregateStore<A>
where
    A: Aggregate,
    A::Command: Clone,
    A::Event: VersionedEvent,
{
    /// A store for `A` in the database behind `pool`, owned by `service`. It loads
    /// events of older versions through the event enum's upcasters.
    pub fn new(service: &'static str, pool: PgPool, services: A::Services) -> Self {
        Self {
            service,
            store: persisted(EventRepository::new(pool.clone())),
            pool,
            services,
            cache: AggregateCache::new(cache::DEFAULT_CAPACITY),
        }
    }

    /// The same store keeping at most `capacity` aggregates in memory; 0 makes
    /// every command load its aggregate from the database.
    pub fn with_cache_capacity(self, capacity: usize) -> Self {
        Self {
            cache: AggregateCache::new(capacity),
            ..self
        }
    }

    /// The same store, appending without `NOTIFY` while the relay of this process
    /// leads and waking it through `wake` instead (see [`crate::relay::RelayWake`]).
    pub fn with_relay_wake(self, wake: crate::relay::RelayWake) -> Self {
        Self {
            store: persisted(EventRepository::new(self.pool.clone()).with_relay_wake(wake)),
            ..self
        }
    }

    /// The pool the store writes through.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Loads the aggregate, lets it decide, and appends what it decided in one
    /// transaction. Returns the aggregate's version afterwards: its last sequence.
    ///
    /// The first attempt takes the aggregate from memory when it is there. Only an
    /// append is trusted to such a copy, since the events table's primary key
    /// refuses an append to a stale one. A refusal, or a decision to append
    /// nothing, is made again on the aggregate loaded from the database, and so
    /// is every command with `If-Match`.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<i64, CommandError<A::Error>> {
        self.execute_and_inspect(aggregate_id, command, context, |_| ())
            .await
            .map(|(version, ())| version)
    }

    /// [`Self::execute`], which also hands back what `inspect` reads from the
    /// aggregate as the command left it, such as whether it refused something by
    /// an event. That saves loading the aggregate again.
    pub async fn execute_and_inspect<R>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        inspect: impl Fn(&A) -> R,
    ) -> Result<(i64, R), CommandError<A::Error>> {
        let attempts = if context.expected_version.is_some() {
            1
        } else {
            CONFLICT_ATTEMPTS
        };
        let mut attempt = 0;
        let mut from_memory = context.expected_version.is_none();
        // Held until the command is done: a command on the same aggregate that
        // comes meanwhile waits, and then decides on what this one left.
        let mut slot = self.cache.turn(aggregate_id).await;
        loop {
            let cached = if from_memory { slot.take() } else { None };
            let used_memory = cached.is_some();
            from_memory = false;
            let decided = self
                .decide(
                    aggregate_id,
                    cached,
                    &mut slot,
                    command.clone(),
                    context,
                    &inspect,
                )
                .await;
            let trusted = match &decided {
                Ok(decided) => decided.appended,
                Err(error) => matches!(error, CommandError::Store(_)),
            };
            if used_memory && !trusted {
                // Decided on a copy from memory, which may be stale: decide again
                // on the stored aggregate, at once, as there is no writer to wait for.
                continue;
            }
            match decided {
                Ok(decided) => return Ok((decided.version, decided.inspected)),
                Err(CommandError::Conflict) if attempt + 1 < attempts => {
                    attempt += 1;
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One attempt: the aggregate from `cached`, or else from the database,
    /// decides, and what it decided is appended. The aggregate is kept in `slot`
    /// afterwards unless the attempt left it in doubt.
    async fn decide<R>(
        &self,
        aggregate_id: &str,
        cached: Option<cache::Cached<A>>,
        slot: &mut cache::Slot<A>,
        command: A::Command,
        context: &CommandContext,
        inspect: &impl Fn(&A) -> R,
    ) -> Result<Decided<R>, CommandError<A::Error>> {
        let (mut aggregate, version) = match cached {
            Some(cached) => (cached.aggregate, cached.version),
            None => {
                let loaded = self
                    .store
                    .load_aggregate(aggregate_id)
                    .await
                    .map_err(store_error)?;
                (loaded.aggregate, loaded.current_sequence)
            }
        };
        if let Some(expected) = context.expected_version {
            if expected != version as i64 {
                return Err(CommandError::VersionMismatch {
                    expected,
                    actual: version as i64,
                });
            }
        }
        // The sink applies each event to the aggregate as it is written, so after
        // `handle` the aggregate is already in the state its events describe.
        let sink = cqrs_es::event_sink::EventSink::default();
        let handled = aggregate.handle(command, &self.services, &sink).await;
        let events = sink.collect().await;
        if let Err(refusal) = handled {
            // Events written before the refusal changed the aggregate, not the store.
            if events.is_empty() {
                slot.put(aggregate, version);
            }
            return Err(CommandError::Rejected(refusal));
        }
        let appended = !events.is_empty();
        let version_after = version + events.len();
        if appended {
            // postgres-es reads only the id and sequence of the context it commits.
            let committed = EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: A::default(),
                current_sequence: version,
                current_snapshot: None,
            };
            self.store
                .commit(events, committed, context.metadata())
                .await
                .map_err(store_error)?;
        }
        let inspected = inspect(&aggregate);
        slot.put(aggregate, version_after);
        Ok(Decided {
            version: version_after as i64,
            appended,
            inspected,
        })
    }

    /// The current state of an aggregate and its version; version 0 means it has
    /// no events yet.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, i64), CommandError<A::Error>> {
        let loaded = self
            .store
            .load_aggregate(aggregate_id)
            .await
            .map_err(store_error)?;
        Ok((loaded.aggregate, loaded.current_sequence as i64))
    }

    /// The aggregate's last sequence; 0 when it has no events.
    pub async fn version(&self, aggregate_id: &str) -> anyhow::Result<i64> {
        use anyhow::Context;
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT max(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_one(&self.pool)
        .await
        .context("read aggregate version")?;
        Ok(version.unwrap_or(0))
    }

    /// The aggregate as it was after event `version` (time travel), or as it is now
    /// when `version` is `None`, with the version it is at. `None` when the aggregate
    /// has no events, and also when `version` is below 1 or above its last
    /// sequence: a version that was never reached has no state, so it is not
    /// clamped to the last one.
    pub async fn state_at(
        &self,
        aggregate_id: &str,
        version: Option<i64>,
    ) -> anyhow::Result<Option<(A, i64)>> {
        use anyhow::Context;
        // The repository decodes payloads exactly as the command side loads them.
        let events = postgres_es::PostgresEventRepository::new(self.pool.clone())
            .get_events::<A>(aggregate_id)
            .await
            .context("read aggregate events")?;
        replay(&A::Event::upcasters(), events, version)
    }

    /// The answer of the state endpoint: [`Self::state_at`] with the aggregate
    /// serialized as JSON.
    pub async fn aggregate_state(
        &self,
        aggregate_id: &str,
        version: Option<i64>,
    ) -> anyhow::Result<Option<AggregateState>> {
        use anyhow::Context;
        let Some((aggregate, version)) = self.state_at(aggregate_id, version).await? else {
            return Ok(None);
        };
        Ok(Some(AggregateState {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version,
            state: serde_json::to_value(&aggregate).context("serialize aggregate state")?,
        }))
    }

    /// The answer of the event-stream endpoint: the aggregate's events from
    /// `from_sequence` on, or `None` when the aggregate has no events at all.
    pub async fn event_stream(
        &self,
        aggregate_id: &str,
        from_sequence: Option<i64>,
    ) -> anyhow::Result<Option<crate::EventStream>> {
        let events = self
            .events(aggregate_id, from_sequence.unwrap_or(1).max(1))
            .await?;
        if events.is_empty() && self.version(aggregate_id).await? == 0 {
            return Ok(None);
        }
        Ok(Some(crate::EventStream {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            events,
        }))
    }

    /// The aggregate's stored events from `from_sequence` on, in sequence order.
    pub async fn events(
        &self,
        aggregate_id: &str,
        from_sequence: i64,
    ) -> anyhow::Result<Vec<Envelope>> {
        read_events(
            &self.pool,
            self.service,
            A::TYPE,
            aggregate_id,
            from_sequence,
        )
        .await
    }
}

/// cqrs-es's event store over `repository`, loading events of older versions
/// through the event enum's upcasters.
fn persisted<A>(repository: EventRepository) -> PersistedEventStore<EventRepository, A>
where
    A: Aggregate,
    A::Event: VersionedEvent,
{
    PersistedEventStore::new_event_store(repository).with_upcasters(A::Event::upcasters())
}

/// Folds stored events, in sequence order and lifted to their current versions, into
/// the aggregate up to `version` (all of them when `None`). `None` when there are no
/// events or `version` lies outside 1..=last sequence.
fn replay<A: Aggregate>(
    upcasters: &[Box<dyn EventUpcaster>],
    events: Vec<SerializedEvent>,
    version: Option<i64>,
) -> anyhow::Result<Option<(A, i64)>> {
    use anyhow::Context;
    let last = events.last().map_or(0, |event| event.sequence as i64);
    let target = version.unwrap_or(last);
    if last == 0 || !(1..=last).contains(&target) {
        return Ok(None);
    }
    let mut aggregate = A::default();
    for serialized in events
        .into_iter()
        .take_while(|event| event.sequence as i64 <= target)
    {
        let sequence = serialized.sequence;
        let event = EventEnvelope::<A>::try_from(versioning::upcast(serialized, upcasters))
            .with_context(|| format!("decode event {sequence} of a {}", A::TYPE))?;
        aggregate.apply(event.payload);
    }
    Ok(Some((aggregate, target)))
}

/// What one attempt at a command decided.
struct Decided<R> {
    /// The aggregate's version afterwards.
    version: i64,
    /// Whether it appended events, rather than deciding that none were needed.
    appended: bool,
    /// What the caller read from the aggregate afterwards.
    inspected: R,
}

/// A random pause that grows with each lost race, so that writers colliding on one
/// aggregate spread out instead of colliding again in lockstep.
fn conflict_backoff(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let ceiling_ms = 1u64 << attempt.min(6);
    std::time::Duration::from_micros(random % (ceiling_ms * 1000))
}

fn store_error<E: std::error::Error>(error: AggregateError<E>) -> CommandError<E> {
    match error {
        AggregateError::UserError(e) => CommandError::Rejected(e),
        AggregateError::AggregateConflict => CommandError::Conflict,
        // The boxed causes are kept whole, so that a consumer can tell a lost
        // connection (retried forever) from a fault of the handler (parked).
        AggregateError::DatabaseConnectionError(cause) | AggregateError::UnexpectedError(cause) => {
            CommandError::Store(anyhow::Error::from_boxed(cause))
        }
        other => CommandError::Store(anyhow::anyhow!(other.to_string())),
    }
}

/// A row of the events table with the outbox columns.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    /// Position in the service's log.
    pub global_position: i64,
    /// The writing transaction's id, as a number.
    pub transaction_id: i64,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// Position within the aggregate.
    pub sequence: i64,
    /// The event's name.
    pub event_type: String,
    /// The payload's schema version.
    pub event_version: String,
    /// The payload as postgres-es stored it.
    pub payload: serde_json::Value,
    /// The command's metadata.
    pub metadata: serde_json::Value,
    /// When the event was stored.
    pub recorded_at: DateTime<Utc>,
}

/// The select list that reads an [`EventRow`].
pub const EVENT_COLUMNS: &str = "global_position, transaction_id::text::bigint AS transaction_id, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";

impl EventRow {
    /// The row as the Envelope that NATS and the event-stream endpoints carry.
    pub fn into_envelope(self, service: &str) -> Envelope {
        let metadata = match self.metadata {
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            _ => HashMap::new(),
        };
        Envelope {
            event_id: Envelope::event_id_for(
                service,
                &self.aggregate_type,
                &self.aggregate_id,
                self.sequence,
            ),
            service: service.to_owned(),
            payload: untag_payload(&self.event_type, self.payload),
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            global_position: self.global_position,
            event_type: self.event_type,
            event_version: self.event_version,
            metadata,
            recorded_at: self.recorded_at,
        }
    }
}

/// Reads one aggregate's events from `from_sequence` on, in sequence order.
pub async fn read_events(
    pool: &PgPool,
    service: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    from_sequence: i64,
) -> anyhow::Result<Vec<Envelope>> {
    use anyhow::Context;
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence >= $3
          ORDER BY sequence"
    );
    let rows: Vec<EventRow> = sqlx::query_as(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(from_sequence)
        .fetch_all(pool)
        .await
        .context("read aggregate events")?;
    Ok(rows
        .into_iter()
        .map(|row| row.into_envelope(service))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// A tally: the smallest aggregate whose state shows how many events were folded.
    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Tally {
        total: i64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum TallyEvent {
        Added { amount: i64 },
    }

    impl cqrs_es::DomainEvent for TallyEvent {
        fn event_type(&self) -> String {
            "Added".to_owned()
        }
        fn event_version(&self) -> String {
            "1.0".to_owned()
        }
    }

    impl Aggregate for Tally {
        const TYPE: &'static str = "Tally";
        type Command = ();
        type Event = TallyEvent;
        type Error = std::convert::Infallible;
        type Services = ();

        async fn handle(
            &mut self,
            _command: (),
            _services: &(),
            _sink: &cqrs_es::event_sink::EventSink<Self>,
        ) -> Result<(), Self::Error> {
            Ok(())
        }

        fn apply(&mut self, event: TallyEvent) {
            let TallyEvent::Added { amount } = event;
            self.total += amount;
        }
    }

    fn stored(amounts: &[i64]) -> Vec<SerializedEvent> {
        amounts
            .iter()
            .enumerate()
            .map(|(index, amount)| SerializedEvent {
                aggregate_id: "t-1".to_owned(),
                sequence: index + 1,
                aggregate_type: "Tally".to_owned(),
                event_type: "Added".to_owned(),
                event_version: "1.0".to_owned(),
                payload: serde_json::json!({"Added": {"amount": amount}}),
                metadata: serde_json::json!({}),
            })
            .collect()
    }

    fn total_at(amounts: &[i64], version: Option<i64>) -> Option<(i64, i64)> {
        replay::<Tally>(&[], stored(amounts), version)
            .expect("replay")
            .map(|(tally, version)| (tally.total, version))
    }

    #[test]
    fn replaying_to_a_version_folds_only_the_events_up_to_it() {
        assert_eq!(total_at(&[1, 10, 100], Some(1)), Some((1, 1)));
        assert_eq!(total_at(&[1, 10, 100], Some(2)), Some((11, 2)));
    }

    #[test]
    fn replaying_without_a_version_gives_the_current_state() {
        assert_eq!(total_at(&[1, 10, 100], None), Some((111, 3)));
    }

    #[test]
    fn replaying_lifts_older_versions_through_the_upcasters() {
        // Version 0.9 of `Added` called its field `value`.
        let rename = |payload: serde_json::Value| {
            let value = payload["Added"]["value"].clone();
            serde_json::json!({"Added": {"amount": value}})
        };
        let upcasters: Vec<Box<dyn EventUpcaster>> = vec![Box::new(
            cqrs_es::persist::SemanticVersionEventUpcaster::new("Added", "1.0", Box::new(rename)),
        )];
        let mut events = stored(&[1, 10]);
        events[0].event_version = "0.9".to_owned();
        events[0].payload = serde_json::json!({"Added": {"value": 5}});
        let (tally, version) = replay::<Tally>(&upcasters, events, None)
            .expect("replay")
            .expect("a state");
        assert_eq!((tally.total, version), (15, 2));
    }

    #[test]
    fn a_version_never_reached_has_no_state() {
        assert_eq!(total_at(&[1, 10, 100], Some(4)), None);
        assert_eq!(total_at(&[1, 10, 100], Some(0)), None);
        assert_eq!(total_at(&[], None), None);
    }
}

//! The event-replay kit: it feeds recorded Envelope streams into a projection
//! against a real database, through the same exactly-once path as the worker's
//! consumers ([`platform::consumer::apply_batch`]: offsets and checkpoints, no
//! NATS), and snapshots the projection's tables for comparison.
//!
//! A fixture is a JSONL file with one Envelope per line, exactly as the relay
//! publishes it. It may hold several services' streams, each in its stream order;
//! a projection takes the events of its own sources from it.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use projections::replay;
//! let replay = replay::Replay::fixture("../tests/fixtures/saga.jsonl", "orders").await?;
//! let snapshot = replay.snapshot().await?;
//! replay::assert_snapshot(&snapshot, "../tests/fixtures/expected/orders.json");
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use platform::consumer::{self, ConsumerConfig};
use platform::db::{self, quote_ident, READ_MODEL_MIGRATIONS};
use platform::nats::StreamSpec;
use platform::testing::TestDb;
use platform::Envelope;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::app::{Projection, SourceSpec, PROJECTIONS};
use crate::MIGRATIONS;

/// Most events applied in one transaction, as a consumer's batch.
const BATCH_SIZE: usize = 256;

/// The environment variable that makes [`assert_snapshot`] write the expected file
/// instead of comparing with it.
pub const UPDATE_SNAPSHOTS: &str = "UPDATE_SNAPSHOTS";

/// The projection called `name` in [`PROJECTIONS`].
pub fn projection(name: &str) -> anyhow::Result<&'static Projection> {
    PROJECTIONS
        .iter()
        .find(|projection| projection.name == name)
        .with_context(|| {
            let known: Vec<&str> = PROJECTIONS.iter().map(|p| p.name).collect();
            format!("no projection {name:?}; there are {}", known.join(", "))
        })
}

/// Reads a JSONL fixture: one Envelope per line, blank lines ignored.
pub fn read_fixture(path: impl AsRef<Path>) -> anyhow::Result<Vec<Envelope>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut envelopes = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let envelope = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not an Envelope", path.display(), index + 1))?;
        envelopes.push(envelope);
    }
    Ok(envelopes)
}

/// Writes envelopes as a JSONL fixture, one per line, in the order given.
pub fn write_fixture(path: impl AsRef<Path>, envelopes: &[Envelope]) -> anyhow::Result<()> {
    let path = path.as_ref();
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for envelope in envelopes {
        serde_json::to_writer(&mut out, envelope).context("serialize an Envelope")?;
        out.write_all(b"\n")
            .with_context(|| format!("write {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("write {}", path.display()))
}

/// Applies the events of `projection`'s sources, in the order given, to a
/// database that holds the read-model and projection migrations. Each source
/// writes the offsets and checkpoint of its own durable consumer, so applying the
/// same events again changes nothing. Each event's stream sequence is its
/// position among the given events of its service, which is right for whole
/// streams recorded from their start. Returns how many events were new.
pub async fn apply(
    pool: &PgPool,
    projection: &Projection,
    envelopes: &[Envelope],
) -> anyhow::Result<u64> {
    let handler = (projection.handler)();
    let mut positions: HashMap<&str, u64> = HashMap::new();
    let mut batch: Vec<(&Envelope, u64)> = Vec::new();
    let mut batch_source: Option<&SourceSpec> = None;
    let mut applied = 0;
    for envelope in envelopes {
        let position = positions.entry(envelope.service.as_str()).or_default();
        *position += 1;
        let Some(source) = source_of(projection, envelope) else {
            continue;
        };
        let same_source = batch_source.is_some_and(|s| s.durable_name == source.durable_name);
        if !batch.is_empty() && (!same_source || batch.len() == BATCH_SIZE) {
            applied += apply_batch(pool, &*handler, batch_source, &batch).await?;
            batch.clear();
        }
        batch_source = Some(source);
        batch.push((envelope, *position));
    }
    if !batch.is_empty() {
        applied += apply_batch(pool, &*handler, batch_source, &batch).await?;
    }
    Ok(applied)
}

async fn apply_batch(
    pool: &PgPool,
    handler: &dyn platform::consumer::Handler,
    source: Option<&SourceSpec>,
    batch: &[(&Envelope, u64)],
) -> anyhow::Result<u64> {
    let source = source.context("a batch without a source")?;
    consumer::apply_batch(
        pool,
        handler,
        &consumer_config(source),
        batch.iter().copied(),
    )
    .await
    .with_context(|| format!("replay into consumer {}", source.durable_name))
}

/// The consumer configuration a replay records offsets and checkpoints under: the
/// source's durable name and its stream's standard name.
fn consumer_config(source: &SourceSpec) -> ConsumerConfig {
    let stream = StreamSpec::for_service(source.service);
    let filter_subject = format!("{}.{}.>", stream.subject_prefix, source.aggregate_type);
    ConsumerConfig::new(source.durable_name, stream, filter_subject)
}

/// The source of `projection` that consumes `envelope`, if any.
pub fn source_of<'p>(projection: &'p Projection, envelope: &Envelope) -> Option<&'p SourceSpec> {
    projection.sources.iter().find(|source| {
        source.service == envelope.service && source.aggregate_type == envelope.aggregate_type
    })
}

/// Creates the read-model and projection tables in a fresh database.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    db::migrate(pool, &READ_MODEL_MIGRATIONS).await?;
    db::migrate(pool, &MIGRATIONS).await
}

/// One projection replayed into a database of its own, dropped with the value.
pub struct Replay {
    /// The database, with the read-model and projection migrations.
    pub db: TestDb,
    /// The projection it holds.
    pub projection: &'static Projection,
}

impl Replay {
    /// A fresh database for the projection called `name`, with nothing applied.
    pub async fn new(name: &str) -> anyhow::Result<Self> {
        let projection = projection(name)?;
        let db = TestDb::new(&[&READ_MODEL_MIGRATIONS, &MIGRATIONS]).await?;
        Ok(Self { db, projection })
    }

    /// A fresh database for the projection called `name`, with the fixture at
    /// `path` applied.
    pub async fn fixture(path: impl AsRef<Path>, name: &str) -> anyhow::Result<Self> {
        let replay = Self::new(name).await?;
        replay.apply(&read_fixture(path)?).await?;
        Ok(replay)
    }

    /// Applies more events; see [`apply`]. Returns how many were new.
    pub async fn apply(&self, envelopes: &[Envelope]) -> anyhow::Result<u64> {
        apply(&self.db.pool, self.projection, envelopes).await
    }

    /// Every row of the projection's tables.
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        snapshot(&self.db.pool, self.projection).await
    }
}

/// Every row of a projection's tables, as JSON objects ordered by primary key,
/// by table name. Times are written in UTC, so a snapshot does not depend on the
/// server's time zone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Snapshot {
    /// The rows of each table.
    pub tables: BTreeMap<String, Vec<Row>>,
    /// The primary-key columns of each table, when the snapshot was read from a
    /// database rather than a file.
    #[serde(skip)]
    pub keys: BTreeMap<String, Vec<String>>,
}

/// One row: its columns by name.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// Two snapshots are equal when their rows are: the keys are only read along.
impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.tables == other.tables
    }
}

/// Snapshots the tables of `projection` in the database of `pool`.
pub async fn snapshot(pool: &PgPool, projection: &Projection) -> anyhow::Result<Snapshot> {
    let mut tx = db::begin(pool).await.context("begin the snapshot")?;
    sqlx::query("SET LOCAL TIME ZONE 'UTC'")
        .execute(&mut *tx)
        .await
        .context("write times in UTC")?;
    let (mut tables, mut keys) = (BTreeMap::new(), BTreeMap::new());
    for &table in projection.tables {
        let key = primary_key(&mut tx, table).await?;
        let order: Vec<String> = key
            .iter()
            .map(|c| format!("t.{}", quote_ident(c)))
            .collect();
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY {}), '[]') FROM {} t",
            order.join(", "),
            quote_ident(table)
        );
        let rows: sqlx::types::Json<Vec<Row>> = sqlx::query_scalar(&sql)
            .fetch_one(&mut *tx)
            .await
            .with_context(|| format!("read the rows of {table}"))?;
        tables.insert(table.to_owned(), rows.0);
        keys.insert(table.to_owned(), key);
    }
    tx.commit().await.context("end the snapshot")?;
    Ok(Snapshot { tables, keys })
}

/// The primary-key columns of `table`, in key order.
pub async fn primary_key(
    conn: &mut sqlx::PgConnection,
    table: &str,
) -> anyhow::Result<Vec<String>> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text
           FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary
          ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(quote_ident(table))
    .fetch_all(conn)
    .await
    .with_context(|| format!("read the primary key of {table}"))?;
    anyhow::ensure!(!columns.is_empty(), "table {table} has no primary key");
    Ok(columns)
}

/// Compares a snapshot with the expected one in the JSON file at `path`, and
/// panics with both when they differ. With `UPDATE_SNAPSHOTS=1` it writes the
/// file instead; review what it wrote before keeping it.
pub fn assert_snapshot(snapshot: &Snapshot, path: impl AsRef<Path>) {
    let path = path.as_ref();
    // A test helper: a snapshot that cannot be serialized is a bug in the kit.
    let actual = serde_json::to_string_pretty(snapshot).expect("a snapshot is JSON") + "\n";
    if std::env::var(UPDATE_SNAPSHOTS).is_ok_and(|value| value == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e}; run with {UPDATE_SNAPSHOTS}=1 to write it",
            path.display()
        )
    });
    let expected: Snapshot = serde_json::from_str(&expected)
        .unwrap_or_else(|e| panic!("{} is not a snapshot: {e}", path.display()));
    if &expected != snapshot {
        let diff = crate::diff::diff(&expected, snapshot);
        panic!(
            "the read model differs from {} (\"live\" is the file, \"replay\" this run; \
             rerun with {UPDATE_SNAPSHOTS}=1 to accept it):\n{diff}",
            path.display()
        );
    }
}

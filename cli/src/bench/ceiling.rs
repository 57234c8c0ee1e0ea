//! The Postgres ceiling: the database work of one command and nothing else. In its
//! own transaction, read an aggregate's events, then append one, as postgres-es does
//! for every command, on a scratch database with the event store's schema.

use std::sync::Arc;

use anyhow::Context;
use platform::db::{self, EVENT_STORE_MIGRATIONS};
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Row};

use super::load::{self, Summary, Window};
use super::setup::PRODUCTS;

/// The scratch database, dropped and created anew by every run.
pub const SCRATCH_DATABASE: &str = "shop_bench_ceiling";

/// Aggregates seeded per statement, so that no transaction stays open long: the
/// relays of a running stack wait for the oldest open transaction on the server.
const SEED_BATCH: i64 = 50;

/// A payload and metadata the size of a real Restocked event's.
const PAYLOAD: &str = r#"{"Restocked":{"quantity":1}}"#;
const METADATA: &str = r#"{"correlation_id":"0192f0a0-0000-7000-8000-000000000000","causation_id":"0192f0a0-0000-7000-8000-000000000001"}"#;

/// The scratch event store and its aggregates, `BENCH-0000` to `BENCH-0999`.
pub struct Ceiling {
    server: PgConnectOptions,
    options: PgConnectOptions,
}

impl Ceiling {
    /// Creates the scratch database afresh with the event store's migrations.
    pub async fn create(server: &PgConnectOptions) -> anyhow::Result<Self> {
        db::drop_database(server, SCRATCH_DATABASE).await?;
        db::create_database(server, SCRATCH_DATABASE).await?;
        let options = server.clone().database(SCRATCH_DATABASE);
        let pool = db::connect(options.clone(), 1).await?;
        db::migrate(&pool, &EVENT_STORE_MIGRATIONS).await?;
        pool.close().await;
        Ok(Self {
            server: server.clone(),
            options,
        })
    }

    /// Appends events until every aggregate has at least `events` of them, as
    /// many as the command benchmark's products have.
    pub async fn seed(&self, events: i64) -> anyhow::Result<()> {
        let pool = db::connect(self.options.clone(), 1).await?;
        for first in (0..PRODUCTS as i64).step_by(SEED_BATCH as usize) {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata) \
                 SELECT 'Product', a.id, s, 'Restocked', '1.0', $3::json, $4::json \
                 FROM (SELECT 'BENCH-' || lpad(i::text, 4, '0') AS id FROM generate_series($1, $2) i) a \
                 CROSS JOIN LATERAL (SELECT coalesce(max(sequence), 0) AS last FROM events e \
                     WHERE e.aggregate_type = 'Product' AND e.aggregate_id = a.id) l \
                 CROSS JOIN LATERAL generate_series(l.last + 1, $5) s",
            )
            .bind(first)
            .bind((first + SEED_BATCH).min(PRODUCTS as i64) - 1)
            .bind(PAYLOAD)
            .bind(METADATA)
            .bind(events)
            .execute(&pool)
            .await
            .context("seed the scratch event store")?;
        }
        pool.close().await;
        Ok(())
    }

    /// Runs the database work of one command from `connections` connections.
    pub async fn measure(&self, connections: usize, window: Window) -> anyhow::Result<Summary> {
        let size = u32::try_from(connections).unwrap_or(u32::MAX).max(1);
        self.ensure_free_connections(size).await?;
        // The services' pool options: a connection goes out untested while busy.
        let pool = platform::db::pool_options()
            .max_connections(size)
            .min_connections(size)
            // As the services' own stores append: without the trigger's `NOTIFY`,
            // whose lock would serialize the commits (decision 0025).
            .connect_with(
                self.options
                    .clone()
                    .options([("shop.relay_woken_in_process", "on")]),
            )
            .await
            .context("connect to the scratch event store")?;
        let shared = Arc::new(pool.clone());
        let summary = load::closed_loop(connections, window, move |index| {
            let pool = shared.clone();
            async move {
                let aggregate = format!("BENCH-{:04}", index % PRODUCTS as u64);
                one_command(&pool, &aggregate)
                    .await
                    .map_err(|error| format!("{error:#}"))
            }
        })
        .await;
        pool.close().await;
        Ok(summary)
    }

    /// Fails with a clear message when the server cannot give `needed` more
    /// connections: the running stack's pools hold many (up to 32 per command
    /// service), and PostgreSQL's default `max_connections` is 100.
    async fn ensure_free_connections(&self, needed: u32) -> anyhow::Result<()> {
        let pool = db::connect(self.options.clone(), 1).await?;
        let (max, used): (i32, i64) = sqlx::query_as(
            "SELECT current_setting('max_connections')::int, \
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
        )
        .fetch_one(&pool)
        .await
        .context("count the server's connections")?;
        pool.close().await;
        let free = i64::from(max) - used + 1;
        if free < i64::from(needed) {
            anyhow::bail!(
                "the ceiling needs {needed} connections, but the server has only {free} free \
                 (max_connections = {max}, {used} in use: the stack's pools and any other \
                 clients); raise max_connections (200 is enough for the stack and the ceiling)"
            );
        }
        Ok(())
    }

    /// Drops the scratch database.
    pub async fn drop(self) -> anyhow::Result<()> {
        db::drop_database(&self.server, SCRATCH_DATABASE).await
    }
}

/// One command's database work: its events, read, then one more appended, in one
/// transaction, with postgres-es's own statements.
async fn one_command(pool: &PgPool, aggregate: &str) -> anyhow::Result<()> {
    let mut transaction = pool.begin().await.context("begin")?;
    let events = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind("Product")
    .bind(aggregate)
    .fetch_all(&mut *transaction)
    .await
    .context("read the aggregate's events")?;
    let last: i64 = match events.last() {
        Some(row) => row.try_get("sequence").context("read a sequence")?,
        None => 0,
    };
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6::json, $7::json)",
    )
    .bind("Product")
    .bind(aggregate)
    .bind(last + 1)
    .bind("Restocked")
    .bind("1.0")
    .bind(PAYLOAD)
    .bind(METADATA)
    .execute(&mut *transaction)
    .await
    .context("append an event")?;
    transaction.commit().await.context("commit")
}

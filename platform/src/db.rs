//! PostgreSQL plumbing: pools, database-per-service provisioning and the embedded
//! migrations that every event store and read-model database shares.

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Transaction};

/// The event-store schema: postgres-es's `events` and `snapshots` tables, plus the
/// outbox columns, the NOTIFY trigger and the relay checkpoint.
pub static EVENT_STORE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/event_store");

/// Tables that every database with consumers needs (read models, and command
/// services that react to other services): checkpoints and the per-aggregate guard
/// against applying an event twice. Versions 100-199, so they can share a database
/// with the event store's 1-99.
pub static READ_MODEL_MIGRATIONS: Migrator = sqlx::migrate!("migrations/read_model");

/// One database of the system, the role that owns it and the roles that may only
/// read it. No other role can connect.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseSpec {
    /// Database name, such as `inventory_es`.
    pub name: &'static str,
    /// Login role that owns the database and writes to it.
    pub owner: &'static str,
    /// Login roles that may connect and `SELECT`, in read-only transactions.
    pub readers: &'static [&'static str],
}

/// The inventory service's event store.
pub const INVENTORY_DB: DatabaseSpec = DatabaseSpec {
    name: "inventory_es",
    owner: "inventory",
    readers: &[],
};

/// The customers service's event store.
pub const CUSTOMERS_DB: DatabaseSpec = DatabaseSpec {
    name: "customers_es",
    owner: "customers",
    readers: &[],
};

/// The orders service's event store.
pub const ORDERS_DB: DatabaseSpec = DatabaseSpec {
    name: "orders_es",
    owner: "orders",
    readers: &[],
};

/// The payments service's event store.
pub const PAYMENTS_DB: DatabaseSpec = DatabaseSpec {
    name: "payments_es",
    owner: "payments",
    readers: &[],
};

/// The read models, written by the projection worker and read by query services.
pub const READ_MODEL_DB: DatabaseSpec = DatabaseSpec {
    name: "read_models",
    owner: "projections",
    readers: &["catalog", "orders_view", "customers_view"],
};

/// Every database of the stack, in the order `shop up` provisions them.
pub const ALL_DATABASES: &[DatabaseSpec] = &[
    INVENTORY_DB,
    CUSTOMERS_DB,
    ORDERS_DB,
    PAYMENTS_DB,
    READ_MODEL_DB,
];

/// Opens a pool. `max_connections` is sized by the caller: postgres-es's own helper
/// caps it at 10, which starves a busy command service.
///
/// Its connections plan each prepared statement once and keep the plan
/// (decision 0024). PostgreSQL otherwise plans a statement that joins a bound
/// array again at every execution, as its generic plan guesses ten elements
/// where a batch has one or two: a consumer's batch spent more time planning
/// its statements than running them.
///
/// A plan kept for every batch is made without seeing one, and often without
/// statistics (autovacuum may be off, as on the CI machine). With both unknown,
/// PostgreSQL joined a batch of keys to the table it updates by hashing the
/// whole table: every consumer batch read all of the consumer's offsets. So a
/// statement that reads or updates a batch of rows by key looks each key up in a
/// `CROSS JOIN LATERAL (SELECT … OFFSET 0)`, which the planner cannot turn into
/// such a join, and an `UPDATE` then finds its rows by the `ctid`s looked up.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> anyhow::Result<PgPool> {
    let database = options.get_database().unwrap_or("postgres").to_owned();
    let options = options.options([("plan_cache_mode", "force_generic_plan")]);
    pool_options()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .with_context(|| format!("connect to database {database}"))
}

/// How long a pooled connection may lie idle and still be handed out untested.
const UNTESTED_IF_IDLE_LESS_THAN: Duration = Duration::from_millis(500);

/// The options every service's pool starts from: connections wait at most 5 s
/// for a free one, and are tested only when they have been idle a while.
///
/// sqlx's default pings each connection it hands out, a round trip to
/// PostgreSQL before every statement that borrows one: under the restock load
/// that ping was 18 % of inventory's CPU, and a query service's read took two
/// round trips instead of one. A connection that was in use less than
/// [`UNTESTED_IF_IDLE_LESS_THAN`] ago goes out untested, as HikariCP does; an
/// idle one, which a restarted or restarting server has most likely broken, is
/// still pinged, and replaced when the ping fails. A connection that breaks in
/// between fails its statement, as it would have after a successful ping.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for >= UNTESTED_IF_IDLE_LESS_THAN {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Begins a transaction on a connection from `pool`, even when the caller is
/// cancelled meanwhile: then the transaction is rolled back and the connection
/// goes back to the pool outside any transaction.
///
/// `pool.begin()` is not cancel-safe in sqlx 0.8: a future dropped while its
/// `BEGIN` is in flight returns the connection to the pool inside a transaction
/// that nothing ends (launchbadge/sqlx#4393). Every later borrower then runs in
/// it and keeps its locks, so a switch's `LOCK TABLE` waits forever behind a
/// status query. Here the `BEGIN` runs in a task of its own, which finishes it
/// whatever happens to the caller; a transaction nobody takes is dropped, and
/// sqlx rolls a begun one back.
pub async fn begin(pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    match tokio::spawn(async move { pool.begin().await }).await {
        Ok(begun) => begun,
        Err(joined) if joined.is_panic() => std::panic::resume_unwind(joined.into_panic()),
        // Only a runtime shutting down cancels the task.
        Err(_) => Err(sqlx::Error::PoolClosed),
    }
}

/// Opens a pool on a service database, creating the database first when it is
/// missing and the server URL is allowed to (development and tests).
pub async fn connect_or_create(
    server: &PgConnectOptions,
    options: PgConnectOptions,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    if let Some(name) = options.get_database() {
        if !database_exists(server, name).await.unwrap_or(true) {
            create_database(server, name).await?;
        }
    }
    connect(options, max_connections).await
}

/// Runs a migrator that shares its database with other migrators: each one keeps
/// its own version range and ignores the others' rows in `_sqlx_migrations`.
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> anyhow::Result<()> {
    let mut migrator = Migrator {
        migrations: migrator.migrations.clone(),
        ..Migrator::DEFAULT
    };
    migrator.set_ignore_missing(true);
    migrator.run(pool).await.context("run migrations")
}

/// Whether `name` exists on the server.
pub async fn database_exists(server: &PgConnectOptions, name: &str) -> anyhow::Result<bool> {
    let mut conn = PgConnection::connect_with(server)
        .await
        .context("connect to the PostgreSQL server")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .context("look up database")?;
    Ok(exists)
}

/// Creates an empty database; one created concurrently by someone else counts as done.
pub async fn create_database(server: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(server)
        .await
        .context("connect to the PostgreSQL server")?;
    let sql = format!("CREATE DATABASE {}", quote_ident(name));
    ignore_duplicate(conn.execute(sql.as_str()).await)
        .with_context(|| format!("create database {name}"))
}

/// Drops a database, closing its connections first. Used by test clean-up.
pub async fn drop_database(server: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(server)
        .await
        .context("connect to the PostgreSQL server")?;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    conn.execute(sql.as_str())
        .await
        .with_context(|| format!("drop database {name}"))?;
    Ok(())
}

/// Creates the database, its owner and its readers, and closes it to everyone else.
/// Safe to run again and concurrently: what exists is left as it is.
pub async fn provision(server: &PgConnectOptions, spec: &DatabaseSpec) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(server)
        .await
        .context("connect to the PostgreSQL server")?;
    for role in std::iter::once(&spec.owner).chain(spec.readers) {
        let sql = format!("CREATE ROLE {} LOGIN", quote_ident(role));
        ignore_duplicate(conn.execute(sql.as_str()).await)
            .with_context(|| format!("create role {role}"))?;
    }
    let db = quote_ident(spec.name);
    let owner = quote_ident(spec.owner);
    let sql = format!("CREATE DATABASE {db} OWNER {owner}");
    ignore_duplicate(conn.execute(sql.as_str()).await)
        .with_context(|| format!("create database {}", spec.name))?;
    conn.execute(format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC").as_str())
        .await
        .context("close database to PUBLIC")?;
    for reader in spec.readers {
        let reader = quote_ident(reader);
        conn.execute(format!("GRANT CONNECT ON DATABASE {db} TO {reader}").as_str())
            .await
            .context("grant connect to reader")?;
        conn.execute(
            format!("ALTER ROLE {reader} IN DATABASE {db} SET default_transaction_read_only = on")
                .as_str(),
        )
        .await
        .context("make reader read-only")?;
    }
    conn.close().await.ok();

    let mut inside = PgConnection::connect_with(&server.clone().database(spec.name))
        .await
        .with_context(|| format!("connect to {}", spec.name))?;
    for reader in spec.readers {
        let reader = quote_ident(reader);
        let grants = format!(
            "GRANT USAGE ON SCHEMA public TO {reader};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT ON TABLES TO {reader};"
        );
        inside
            .execute(grants.as_str())
            .await
            .context("grant reads to reader")?;
    }
    Ok(())
}

/// Quotes an SQL identifier, for the few statements that cannot take parameters.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Treats "already exists" (duplicate database, role or object) as success.
fn ignore_duplicate<T>(result: Result<T, sqlx::Error>) -> Result<(), sqlx::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e))
            if matches!(e.code().as_deref(), Some("42P04" | "42710" | "23505")) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;
    use sqlx::postgres::PgPoolOptions;
    use sqlx::PgPool;

    use crate::testing::TestDb;

    #[tokio::test]
    async fn pooled_connections_keep_their_generic_plans() {
        let db = TestDb::new(&[]).await.expect("test database");
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&db.pool)
            .await
            .expect("show plan_cache_mode");
        assert_eq!(mode, "force_generic_plan");
    }

    /// A pool of one connection, so that every borrower gets the same one, which
    /// it hands out without a ping: once it is idle, one poll of a `begin` puts
    /// `BEGIN` on the wire and leaves it there, unanswered.
    async fn one_connection(db: &TestDb) -> PgPool {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(db.options())
            .await
            .expect("connect");
        sqlx::query("SELECT 1")
            .execute(&pool)
            .await
            .expect("warm up");
        pool
    }

    /// Waits until the connection is back in the pool: a task returns it.
    async fn idle(pool: &PgPool) {
        while pool.num_idle() == 0 {
            tokio::task::yield_now().await;
        }
    }

    /// Whether the pool's connection runs its statements inside a transaction
    /// begun earlier: then two statements in a row share a transaction id.
    async fn inside_an_open_transaction(pool: &PgPool) -> bool {
        let xid =
            || sqlx::query_scalar::<_, String>("SELECT pg_current_xact_id()::text").fetch_one(pool);
        xid().await.expect("first xid") == xid().await.expect("second xid")
    }

    /// A connection that lay idle is tested before it is handed out, so one that
    /// the server closed meanwhile is replaced rather than failing a statement.
    #[tokio::test]
    async fn an_idle_connection_that_the_server_closed_is_replaced_before_use() {
        let db = TestDb::new(&[]).await.expect("test database");
        let pool = super::pool_options()
            .max_connections(1)
            .connect_with(db.options())
            .await
            .expect("connect");
        let backend = || sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(&pool);
        let before = backend().await.expect("first statement");
        idle(&pool).await;
        let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(before)
            .fetch_one(&db.pool)
            .await
            .expect("terminate the pooled connection's backend");
        assert!(terminated);
        tokio::time::sleep(super::UNTESTED_IF_IDLE_LESS_THAN + Duration::from_millis(200)).await;
        let after = backend()
            .await
            .expect("a statement after the server closed the idle connection");
        assert_ne!(after, before, "the closed connection was handed out again");
    }

    /// With `pool.begin()` in place of [`super::begin`] this fails within a few
    /// attempts: a `BEGIN` is seldom answered within the one poll.
    #[tokio::test]
    async fn a_begin_cancelled_in_flight_leaves_no_transaction_behind() {
        let db = TestDb::new(&[]).await.expect("test database");
        let pool = one_connection(&db).await;
        for _ in 0..50 {
            idle(&pool).await;
            if let Some(begun) = super::begin(&pool).now_or_never() {
                begun.expect("begin").commit().await.expect("commit");
            }
            assert!(!inside_an_open_transaction(&pool).await);
        }
        let tx = super::begin(&pool)
            .await
            .expect("begin after the cancellations");
        tx.commit().await.expect("commit");
    }
}

//! Zero-downtime rebuilds (docs/decisions/0010): a projection's next version is
//! built in schema `rebuild_<name>` by consumers of its own, while the live
//! tables in `public` keep serving, and then takes their place in one transaction.
//!
//! `projection_versions` records each projection's live version and its rebuild
//! in progress, so a worker that crashes mid-rebuild resumes it on start.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::ErrorCode;
use chrono::{DateTime, Utc};
use platform::config::CommonArgs;
use platform::db::{self, quote_ident};
use sqlx::{Executor, PgConnection, PgPool};
use tokio::sync::{Mutex, Notify};

use crate::app::{Projection, SourceSpec, PROJECTIONS};

/// A projection's live version and its rebuild in progress, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The version whose tables serve queries, from 1.
    pub version: i32,
    /// The rebuild in progress.
    pub rebuild: Option<Rebuild>,
}

/// A rebuild in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuild {
    /// The version it builds.
    pub target_version: i32,
    /// When it was requested.
    pub started_at: DateTime<Utc>,
}

/// Why a rebuild was not started.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    /// The projection is already being rebuilt.
    #[error("projection {name} is already being rebuilt to version {target_version}")]
    AlreadyRunning {
        /// The projection.
        name: &'static str,
        /// The version the running rebuild builds.
        target_version: i32,
    },
    /// PostgreSQL or NATS failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Wakes each projection's supervisor when a rebuild of it is requested, and
/// keeps two requests for one projection from starting at once.
#[derive(Clone)]
pub struct Requests {
    wakeups: Arc<HashMap<&'static str, Arc<Notify>>>,
    starting: Arc<Mutex<()>>,
}

impl Default for Requests {
    fn default() -> Self {
        let wakeups = PROJECTIONS
            .iter()
            .map(|projection| (projection.name, Arc::new(Notify::new())))
            .collect();
        Self {
            wakeups: Arc::new(wakeups),
            starting: Arc::new(Mutex::new(())),
        }
    }
}

impl Requests {
    /// What the supervisor of a projection waits on.
    pub fn wakeup(&self, name: &str) -> Arc<Notify> {
        self.wakeups.get(name).cloned().unwrap_or_default()
    }
}

/// The schema a projection's next version is built in.
pub fn schema(projection: &Projection) -> String {
    format!("rebuild_{}", projection.name)
}

/// The `search_path` of a rebuild consumer's batches: the handler's tables resolve
/// to the rebuild schema, the checkpoint tables to `public`.
pub fn search_path(projection: &Projection) -> String {
    format!("{}, public", quote_ident(&schema(projection)))
}

/// Records every projection at version 1 unless it is recorded already.
pub async fn register(pool: &PgPool) -> anyhow::Result<()> {
    let names: Vec<&str> = PROJECTIONS.iter().map(|p| p.name).collect();
    sqlx::query(
        "INSERT INTO projection_versions (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(&names)
    .execute(pool)
    .await
    .context("register the projections' versions")?;
    Ok(())
}

/// A projection's live version and its rebuild in progress.
pub async fn versions(pool: &PgPool, name: &str) -> anyhow::Result<Versions> {
    let row: Option<(i32, Option<i32>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT version, rebuild_target, rebuild_started_at FROM projection_versions WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .with_context(|| format!("read the versions of {name}"))?;
    let Some((version, target, started_at)) = row else {
        return Ok(Versions {
            version: 1,
            rebuild: None,
        });
    };
    let rebuild = target
        .zip(started_at)
        .map(|(target_version, started_at)| Rebuild {
            target_version,
            started_at,
        });
    Ok(Versions { version, rebuild })
}

/// Starts a rebuild: records it, and creates the rebuild schema with empty copies
/// of the live tables, in one transaction. The supervisor then runs it.
pub async fn begin(
    pool: &PgPool,
    jetstream: &jetstream::Context,
    common: &CommonArgs,
    requests: &Requests,
    projection: &'static Projection,
) -> Result<Rebuild, BeginError> {
    let _one_at_a_time = requests.starting.lock().await;
    if let Some(running) = versions(pool, projection.name).await?.rebuild {
        return Err(BeginError::AlreadyRunning {
            name: projection.name,
            target_version: running.target_version,
        });
    }
    // Left behind only by a crash right after an earlier switch; a new rebuild
    // must read its streams from the start.
    delete_consumers(jetstream, common, projection).await?;
    let mut tx = db::begin(pool).await.context("begin the rebuild")?;
    let started: Option<(i32, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE projection_versions
            SET rebuild_target = version + 1, rebuild_started_at = now()
          WHERE name = $1 AND rebuild_target IS NULL
         RETURNING rebuild_target, rebuild_started_at",
    )
    .bind(projection.name)
    .fetch_optional(&mut *tx)
    .await
    .context("record the rebuild")?;
    let (target_version, started_at) = started.context("the projection is not registered")?;
    let durables: Vec<String> = rebuild_durables(projection);
    for table in ["consumer_offsets", "consumer_checkpoints"] {
        let sql = format!("DELETE FROM {table} WHERE consumer = ANY($1)");
        sqlx::query(&sql)
            .bind(&durables)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("clear the rebuild's {table}"))?;
    }
    create_tables(&mut tx, projection).await?;
    tx.commit().await.context("commit the rebuild's start")?;
    requests.wakeup(projection.name).notify_one();
    tracing::info!(
        projection = projection.name,
        target_version,
        "rebuild started"
    );
    Ok(Rebuild {
        target_version,
        started_at,
    })
}

/// The durable names of a projection's rebuild consumers.
pub fn rebuild_durables(projection: &Projection) -> Vec<String> {
    projection
        .sources
        .iter()
        .map(SourceSpec::rebuild_durable_name)
        .collect()
}

/// Creates the rebuild schema with a copy of each live table: columns, defaults,
/// constraints and indexes under their live names. The foreign keys between the
/// projection's tables, which `LIKE` leaves out, come at the switch (see
/// [`add_foreign_keys`]).
async fn create_tables(tx: &mut PgConnection, projection: &Projection) -> anyhow::Result<()> {
    let schema = quote_ident(&schema(projection));
    tx.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str())
        .await
        .context("create the rebuild schema")?;
    for table in projection.tables {
        // `LIKE` copies no storage parameters, such as a fillfactor.
        let options: Option<Vec<String>> =
            sqlx::query_scalar("SELECT reloptions FROM pg_class WHERE oid = $1::regclass")
                .bind(format!("public.{}", quote_ident(table)))
                .fetch_one(&mut *tx)
                .await
                .with_context(|| format!("read the storage parameters of {table}"))?;
        let with = match options {
            Some(options) if !options.is_empty() => format!(" WITH ({})", options.join(", ")),
            _ => String::new(),
        };
        let sql = format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL){with}",
            table = quote_ident(table)
        );
        tx.execute(sql.as_str())
            .await
            .with_context(|| format!("create the rebuild's {table}"))?;
        name_indexes_as_live(tx, &schema, table).await?;
    }
    Ok(())
}

/// Gives the rebuilt tables the foreign keys between the live ones, checking
/// every row once. Added while the rebuild ran, they cost a lookup per inserted
/// row, about a seventh of the orders rebuild's time in PostgreSQL; so they come
/// last, as in a bulk load (decision 0022). A row they reject fails the switch.
/// A rebuild begun by an earlier version already has them, and keeps them.
async fn add_foreign_keys(tx: &mut PgConnection, projection: &Projection) -> anyhow::Result<()> {
    let schema = quote_ident(&schema(projection));
    // Foreign keys print their referenced tables unqualified with `public` alone on
    // the path, and then resolve to the rebuild schema's tables.
    tx.execute("SET LOCAL search_path TO public")
        .await
        .context("set the search_path")?;
    let mut foreign_keys = Vec::new();
    for table in projection.tables {
        let rebuilt = format!("{schema}.{}", quote_ident(table));
        let missing: Vec<(String, String)> = sqlx::query_as(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
              WHERE conrelid = $1::regclass AND contype = 'f'
                AND conname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = $2::regclass)
              ORDER BY conname",
        )
        .bind(format!("public.{table}"))
        .bind(&rebuilt)
        .fetch_all(&mut *tx)
        .await
        .with_context(|| format!("read the foreign keys {table} lacks in the rebuild"))?;
        foreign_keys.extend(
            missing
                .into_iter()
                .map(|key| (*table, rebuilt.clone(), key)),
        );
    }
    tx.execute(format!("SET LOCAL search_path TO {schema}, public").as_str())
        .await
        .context("set the search_path")?;
    for (table, rebuilt, (name, definition)) in foreign_keys {
        let sql = format!(
            "ALTER TABLE {rebuilt} ADD CONSTRAINT {} {definition}",
            quote_ident(&name)
        );
        tx.execute(sql.as_str())
            .await
            .with_context(|| format!("add foreign key {name} to the rebuilt {table}"))?;
    }
    tx.execute("SET LOCAL search_path TO public")
        .await
        .context("set the search_path")?;
    Ok(())
}

/// `LIKE` names the copied indexes after their columns; the live names are kept,
/// so that migrations that name an index still find it after a switch.
async fn name_indexes_as_live(
    tx: &mut PgConnection,
    schema: &str,
    table: &str,
) -> anyhow::Result<()> {
    let renames: Vec<(String, String)> = sqlx::query_as(
        // Only these two tables' indexes are described: `pg_get_indexdef` fails on
        // an index that another rebuild's switch drops meanwhile.
        "WITH indexes AS (
            SELECT i.indrelid, c.relname::text AS name, i.indisunique AS is_unique,
                   regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') AS definition
              FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid IN ($1::regclass, $2::regclass))
         SELECT copy.name, live.name FROM indexes live JOIN indexes copy USING (is_unique, definition)
          WHERE live.indrelid = $1::regclass AND copy.indrelid = $2::regclass
            AND live.name <> copy.name",
    )
    .bind(format!("public.{}", quote_ident(table)))
    .bind(format!("{schema}.{}", quote_ident(table)))
    .fetch_all(&mut *tx)
    .await
    .with_context(|| format!("match the indexes of {table}"))?;
    for (copy, live) in renames {
        let sql = format!(
            "ALTER INDEX {schema}.{} RENAME TO {}",
            quote_ident(&copy),
            quote_ident(&live)
        );
        tx.execute(sql.as_str())
            .await
            .with_context(|| format!("rename index {copy} to {live}"))?;
    }
    Ok(())
}

/// The switch, in one short transaction: the rebuilt tables get their foreign
/// keys, the rebuild's offsets and checkpoints replace the live consumers', the
/// rebuilt tables replace the live ones (with the same grants), and the target
/// becomes the live version. Readers wait at most for the table lock, taken after
/// the foreign keys are checked, and see either the old rows or the new ones.
pub async fn switch(pool: &PgPool, projection: &Projection, target: i32) -> anyhow::Result<()> {
    let mut tx = db::begin(pool).await.context("begin the switch")?;
    tx.execute("SET LOCAL lock_timeout = '5s'")
        .await
        .context("set the lock timeout")?;
    let still_target: Option<i32> = sqlx::query_scalar(
        "SELECT rebuild_target FROM projection_versions WHERE name = $1 FOR UPDATE",
    )
    .bind(projection.name)
    .fetch_one(&mut *tx)
    .await
    .context("lock the projection's versions")?;
    anyhow::ensure!(
        still_target == Some(target),
        "the rebuild of {} to version {target} is no longer in progress",
        projection.name
    );
    add_foreign_keys(&mut tx, projection).await?;
    for source in projection.sources {
        take_over_positions(&mut tx, source).await?;
    }
    let schema = quote_ident(&schema(projection));
    let live: Vec<String> = projection
        .tables
        .iter()
        .map(|table| format!("public.{}", quote_ident(table)))
        .collect();
    let live = live.join(", ");
    tx.execute(format!("LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE").as_str())
        .await
        .context("lock the live tables")?;
    let mut grants = Vec::new();
    for table in projection.tables {
        grants.extend(grants_on(&mut tx, table).await?);
    }
    tx.execute(format!("DROP TABLE {live}").as_str())
        .await
        .context("drop the old version")?;
    for table in projection.tables {
        let sql = format!(
            "ALTER TABLE {schema}.{} SET SCHEMA public",
            quote_ident(table)
        );
        tx.execute(sql.as_str())
            .await
            .with_context(|| format!("move the rebuilt {table} into public"))?;
    }
    for grant in grants {
        tx.execute(grant.as_str())
            .await
            .with_context(|| format!("re-grant: {grant}"))?;
    }
    tx.execute(format!("DROP SCHEMA {schema}").as_str())
        .await
        .context("drop the rebuild schema")?;
    sqlx::query(
        "UPDATE projection_versions
            SET version = rebuild_target, rebuild_target = NULL, rebuild_started_at = NULL,
                switched_at = now()
          WHERE name = $1",
    )
    .bind(projection.name)
    .execute(&mut *tx)
    .await
    .context("record the new version")?;
    tx.commit().await.context("commit the switch")?;
    tracing::info!(
        projection = projection.name,
        version = target,
        "switched to the rebuilt version"
    );
    Ok(())
}

/// Moves the rebuild consumer's offsets and checkpoints to the live durable name.
async fn take_over_positions(tx: &mut PgConnection, source: &SourceSpec) -> anyhow::Result<()> {
    let rebuild = source.rebuild_durable_name();
    for table in ["consumer_offsets", "consumer_checkpoints"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE consumer = $1"))
            .bind(source.durable_name)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("drop the old {table} of {}", source.durable_name))?;
        sqlx::query(&format!(
            "UPDATE {table} SET consumer = $1 WHERE consumer = $2"
        ))
        .bind(source.durable_name)
        .bind(&rebuild)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("hand the {table} of {rebuild} over"))?;
    }
    Ok(())
}

/// `GRANT` statements that give a rebuilt table the privileges the live one has
/// (the query services' read-only roles), since a moved table keeps its own.
async fn grants_on(tx: &mut PgConnection, table: &str) -> anyhow::Result<Vec<String>> {
    let grants: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT r.rolname::text, a.privilege_type
           FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
          WHERE c.oid = $1::regclass AND a.grantee <> c.relowner",
    )
    .bind(format!("public.{}", quote_ident(table)))
    .fetch_all(&mut *tx)
    .await
    .with_context(|| format!("read the grants on {table}"))?;
    Ok(grants
        .into_iter()
        .map(|(role, privilege)| {
            let grantee = role.map_or_else(|| "PUBLIC".to_owned(), |role| quote_ident(&role));
            format!(
                "GRANT {privilege} ON public.{} TO {grantee}",
                quote_ident(table)
            )
        })
        .collect())
}

/// Deletes the rebuild consumers of a projection from NATS; a missing one is fine.
pub async fn delete_consumers(
    jetstream: &jetstream::Context,
    common: &CommonArgs,
    projection: &Projection,
) -> anyhow::Result<()> {
    for source in projection.sources {
        let stream_name = common.stream(source.service).name;
        let stream = match jetstream.get_stream(&stream_name).await {
            Ok(stream) => stream,
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    continue
                }
                _ => return Err(error).with_context(|| format!("find stream {stream_name}")),
            },
        };
        let durable = source.rebuild_durable_name();
        if let Err(error) = stream.delete_consumer(&durable).await {
            let missing = matches!(error.kind(), ConsumerErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::CONSUMER_NOT_FOUND);
            if !missing {
                return Err(error).with_context(|| format!("delete consumer {durable}"));
            }
        }
    }
    Ok(())
}

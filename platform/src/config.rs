//! Configuration shared by every binary. Each service flattens [`CommonArgs`] into
//! its own clap `Parser`, so every setting is an environment variable with a default
//! that matches the local stack, and `--help` documents it.

use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;

use crate::nats::StreamSpec;
use crate::telemetry::LogFormat;

/// Settings every Shop process reads: where PostgreSQL and NATS are, and how to log.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Server-level PostgreSQL URL. Each service derives its own database from it
    /// unless its `<SERVICE>_DATABASE_URL` override is set.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,

    /// NATS server with JetStream enabled.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Keeps this stack's JetStream streams apart from others on the same server:
    /// namespace `dev` reads and writes `DEV_INVENTORY` on `dev.inventory.>`.
    /// Empty means the standard names (`INVENTORY` on `inventory.>`).
    #[arg(long, env = "STREAM_NAMESPACE", default_value = "")]
    pub stream_namespace: String,

    /// Log output: `pretty` for people, `json` for machines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

impl CommonArgs {
    /// Connection options for `database` on the configured server, or the
    /// per-service override when one is given.
    pub fn database(
        &self,
        override_url: Option<&str>,
        database: &str,
    ) -> anyhow::Result<PgConnectOptions> {
        match override_url {
            Some(url) => PgConnectOptions::from_str(url)
                .with_context(|| format!("parse database URL for {database}")),
            None => Ok(self.server()?.database(database)),
        }
    }

    /// The stream of a command service, such as `inventory`, in this stack's namespace.
    pub fn stream(&self, service: &str) -> StreamSpec {
        StreamSpec::in_namespace(&self.stream_namespace, service)
    }

    /// Connection options for the server-level URL (`DATABASE_URL`).
    pub fn server(&self) -> anyhow::Result<PgConnectOptions> {
        PgConnectOptions::from_str(&self.database_url).context("parse DATABASE_URL")
    }
}

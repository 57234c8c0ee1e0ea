//! Databases and roles for every service, and the reset that empties the stack.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::context::DeleteStreamErrorKind;
use async_nats::jetstream::ErrorCode;
use platform::db::{self, ALL_DATABASES};
use platform::devstack;
use sqlx::postgres::PgConnectOptions;

/// The JetStream streams of the command services, deleted by `shop up --reset`.
pub const STREAMS: &[&str] = &["INVENTORY", "CUSTOMERS", "ORDERS", "PAYMENTS"];

/// Where PostgreSQL and NATS are.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Server-level PostgreSQL URL, as a superuser that may create databases and
    /// roles. Services get their own roles and databases on this server.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,

    /// NATS server with JetStream.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

impl ServerArgs {
    /// Connection options for `--database-url`.
    pub fn server(&self) -> anyhow::Result<PgConnectOptions> {
        PgConnectOptions::from_str(&self.database_url).context("parse DATABASE_URL")
    }
}

/// Options of `shop provision`.
#[derive(clap::Args, Debug)]
pub struct ProvisionArgs {
    /// Server-level PostgreSQL URL, as a superuser that may create databases and
    /// roles.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,

    /// How long to wait for PostgreSQL to answer before giving up.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub wait: u64,
}

/// Runs `shop provision`: waits for PostgreSQL, then creates what is missing.
pub async fn run(args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    let server = PgConnectOptions::from_str(&args.database_url).context("parse DATABASE_URL")?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    while !devstack::postgres_answers(&server).await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "PostgreSQL does not answer at {} after {} s",
            args.database_url,
            args.wait
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    provision_all(&server, |line| println!("{line}")).await?;
    Ok(ExitCode::SUCCESS)
}

/// Creates every database of the stack with its owner and reader roles. What
/// exists already is left as it is.
pub async fn provision_all(
    server: &PgConnectOptions,
    report: impl Fn(String),
) -> anyhow::Result<()> {
    for spec in ALL_DATABASES {
        db::provision(server, spec)
            .await
            .with_context(|| format!("provision database {}", spec.name))?;
        let readers = match spec.readers {
            [] => String::new(),
            readers => format!(", read-only for {}", readers.join(", ")),
        };
        report(format!(
            "database {} ready, owned by role {}{readers}",
            spec.name, spec.owner
        ));
    }
    Ok(())
}

/// Empties the stack: drops every database and deletes the command services'
/// JetStream streams (with their consumers).
pub async fn reset(
    server: &PgConnectOptions,
    nats_url: &str,
    report: impl Fn(String),
) -> anyhow::Result<()> {
    for spec in ALL_DATABASES {
        db::drop_database(server, spec.name).await?;
        report(format!("dropped database {}", spec.name));
    }
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("connect to NATS at {nats_url}"))?;
    let jetstream = async_nats::jetstream::new(client);
    for stream in STREAMS {
        match jetstream.delete_stream(stream).await {
            Ok(_) => report(format!("deleted stream {stream}")),
            Err(error) if is_not_found(error.kind()) => {}
            Err(error) => return Err(error).with_context(|| format!("delete stream {stream}")),
        }
    }
    Ok(())
}

fn is_not_found(kind: DeleteStreamErrorKind) -> bool {
    matches!(kind, DeleteStreamErrorKind::JetStream(error) if error.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

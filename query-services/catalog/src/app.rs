//! The catalog process: its settings, its read-only pool and its HTTP server.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use clap::Parser;
use platform::config::CommonArgs;
use platform::db::READ_MODEL_DB;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{router, AppState};

/// Settings of the catalog, each an environment variable with a local default.
#[derive(Parser, Debug, Clone)]
#[command(name = "catalog", about = "Serves the products read model")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CATALOG_ADDR", default_value = "127.0.0.1:8091")]
    pub addr: SocketAddr,

    /// The read-model database; by default `read_models` on the `DATABASE_URL`
    /// server, as the same user. In production, a URL for the read-only `catalog` role.
    #[arg(long, env = "CATALOG_DATABASE_URL")]
    pub catalog_database_url: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The service ready to run: its router and its bound listener.
pub struct App {
    listener: TcpListener,
    router: Router,
}

impl App {
    /// Prepares the pool and binds the listener. Port 0 picks a free port.
    ///
    /// The pool connects lazily: the catalog may start before the projection
    /// worker has created the database, and `/readyz` reports when it can read.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let options = config
            .common
            .database(config.catalog_database_url.as_deref(), READ_MODEL_DB.name)?
            // The catalog never writes; this holds even when connected as the owner.
            .options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("bind {}", config.addr))?;
        Ok(Self {
            listener,
            router: router(AppState { pool }),
        })
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(port = self.port(), "catalog listening");
        platform::http::serve(self.listener, self.router, shutdown).await
    }
}

//! The catalog process: its settings, its read-only pool and its HTTP server.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::CommonArgs;
use platform::db::READ_MODEL_DB;
use platform::service::Service;

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

/// Prepares the pool and binds the listener: the service ready to run. Port 0
/// picks a free port.
///
/// The pool connects lazily: the catalog may start before the projection worker
/// has created the database, and `/readyz` reports when it can read.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let options = config
        .common
        .database(config.catalog_database_url.as_deref(), READ_MODEL_DB.name)?
        // The catalog never writes; this holds even when connected as the owner.
        .options([("default_transaction_read_only", "on")]);
    let pool = platform::db::pool_options()
        .max_connections(16)
        .connect_lazy_with(options);
    Service::bind("catalog", config.addr, router(AppState::new(pool))).await
}

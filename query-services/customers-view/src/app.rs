//! The customers-view process: its settings, its read-only pool and its HTTP server.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::CommonArgs;
use platform::db::READ_MODEL_DB;
use platform::service::Service;

use crate::{router, AppState};

/// Settings of the customers view, each an environment variable with a local default.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "customers-view",
    about = "Serves the customers and notifications read models"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CUSTOMERS_VIEW_ADDR", default_value = "127.0.0.1:8093")]
    pub addr: SocketAddr,

    /// The read-model database; by default `read_models` on the `DATABASE_URL`
    /// server, as the same user. In production, a URL for the read-only
    /// `customers_view` role.
    #[arg(long, env = "CUSTOMERS_VIEW_DATABASE_URL")]
    pub customers_view_database_url: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Prepares the pool and binds the listener: the service ready to run. Port 0
/// picks a free port.
///
/// The pool connects lazily: the service may start before the projection worker
/// has created the database, and `/readyz` reports when it can read.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let options = config
        .common
        .database(
            config.customers_view_database_url.as_deref(),
            READ_MODEL_DB.name,
        )?
        // The view never writes; this holds even when connected as the owner.
        .options([("default_transaction_read_only", "on")]);
    let pool = platform::db::pool_options()
        .max_connections(16)
        .connect_lazy_with(options);
    Service::bind("customers-view", config.addr, router(AppState::new(pool))).await
}

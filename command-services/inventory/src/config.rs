//! The service's settings, every one an environment variable with a local default.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::CommonArgs;

/// Settings of the inventory service.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "inventory",
    about = "The inventory command service: products, stock and reservations"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "INVENTORY_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: SocketAddr,

    /// The event store's URL; by default the `inventory_es` database on DATABASE_URL's server.
    #[arg(long, env = "INVENTORY_DATABASE_URL")]
    pub inventory_database_url: Option<String>,

    /// Most connections in the event store's pool.
    #[arg(long, env = "INVENTORY_DB_POOL", default_value_t = 32)]
    pub db_pool: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

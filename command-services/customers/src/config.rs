//! The service's settings, every one an environment variable with a local default.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::CommonArgs;

/// Settings of the customers service.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "customers",
    about = "The customers command service: registration, credit limits and deactivation"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CUSTOMERS_ADDR", default_value = "127.0.0.1:8082")]
    pub addr: SocketAddr,

    /// The event store's URL; by default the `customers_es` database on DATABASE_URL's server.
    #[arg(long, env = "CUSTOMERS_DATABASE_URL")]
    pub customers_database_url: Option<String>,

    /// Most connections in the event store's pool.
    #[arg(long, env = "CUSTOMERS_DB_POOL", default_value_t = 32)]
    pub db_pool: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

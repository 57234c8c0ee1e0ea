//! The service's settings, every one an environment variable with a local default.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::CommonArgs;

/// Settings of the orders service.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "orders",
    about = "The orders command service: orders and the order saga's reactions"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "ORDERS_ADDR", default_value = "127.0.0.1:8083")]
    pub addr: SocketAddr,

    /// The event store's URL; by default the `orders_es` database on DATABASE_URL's server.
    #[arg(long, env = "ORDERS_DATABASE_URL")]
    pub orders_database_url: Option<String>,

    /// Most connections in the event store's pool, shared by requests and reactions.
    #[arg(long, env = "ORDERS_DB_POOL", default_value_t = 32)]
    pub db_pool: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

//! The service's settings, every one an environment variable with a local default.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use platform::config::CommonArgs;

/// Settings of the payments service.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "payments",
    about = "The payments command service: customer credit and order payments"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PAYMENTS_ADDR", default_value = "127.0.0.1:8084")]
    pub addr: SocketAddr,

    /// The event store's URL; by default the `payments_es` database on DATABASE_URL's server.
    #[arg(long, env = "PAYMENTS_DATABASE_URL")]
    pub payments_database_url: Option<String>,

    /// Most connections in the event store's pool.
    #[arg(long, env = "PAYMENTS_DB_POOL", default_value_t = 32)]
    pub db_pool: u32,

    /// How long after an order's total is known payments keeps waiting for its
    /// customer's registration before declining it with UNKNOWN_CUSTOMER, in
    /// milliseconds. Customer events travel on another stream and may arrive late.
    #[arg(long, env = "UNKNOWN_CUSTOMER_WAIT_MS", default_value_t = 3000)]
    pub unknown_customer_wait_ms: u64,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Config {
    /// [`Self::unknown_customer_wait_ms`] as a duration.
    pub fn unknown_customer_wait(&self) -> Duration {
        Duration::from_millis(self.unknown_customer_wait_ms)
    }
}

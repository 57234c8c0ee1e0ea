//! The gateway's settings, every one an environment variable with a local default.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::CommonArgs;

/// Settings of the gateway.
#[derive(Parser, Debug, Clone)]
#[command(name = "gateway", about = "The shop's single entry point")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// The inventory command service.
    #[arg(long, env = "INVENTORY_URL", default_value = "http://127.0.0.1:8081")]
    pub inventory_url: String,

    /// The catalog query service.
    #[arg(long, env = "CATALOG_URL", default_value = "http://127.0.0.1:8091")]
    pub catalog_url: String,

    #[command(flatten)]
    pub common: CommonArgs,
}

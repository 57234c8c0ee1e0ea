//! The gateway's settings, every one an environment variable with a local default.

use std::net::SocketAddr;

use clap::Parser;
use platform::config::CommonArgs;

use crate::Upstreams;

/// Settings of the gateway.
#[derive(Parser, Debug, Clone)]
#[command(name = "gateway", about = "The shop's single entry point")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// The customers command service.
    #[arg(long, env = "CUSTOMERS_URL", default_value = "http://127.0.0.1:8082")]
    pub customers_url: String,

    /// The inventory command service.
    #[arg(long, env = "INVENTORY_URL", default_value = "http://127.0.0.1:8081")]
    pub inventory_url: String,

    /// The orders command service.
    #[arg(long, env = "ORDERS_URL", default_value = "http://127.0.0.1:8083")]
    pub orders_url: String,

    /// The payments command service.
    #[arg(long, env = "PAYMENTS_URL", default_value = "http://127.0.0.1:8084")]
    pub payments_url: String,

    /// The catalog query service (products).
    #[arg(long, env = "CATALOG_URL", default_value = "http://127.0.0.1:8091")]
    pub catalog_url: String,

    /// The orders-view query service (orders and payments).
    #[arg(long, env = "ORDERS_VIEW_URL", default_value = "http://127.0.0.1:8092")]
    pub orders_view_url: String,

    /// The customers-view query service (profiles and notifications).
    #[arg(
        long,
        env = "CUSTOMERS_VIEW_URL",
        default_value = "http://127.0.0.1:8093"
    )]
    pub customers_view_url: String,

    /// The projection worker (its admin API).
    #[arg(long, env = "PROJECTIONS_URL", default_value = "http://127.0.0.1:8090")]
    pub projections_url: String,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Config {
    /// The upstream base URLs, without trailing slashes.
    pub fn upstreams(&self) -> Upstreams {
        let base = |url: &str| url.trim_end_matches('/').to_owned();
        Upstreams {
            customers: base(&self.customers_url),
            inventory: base(&self.inventory_url),
            orders: base(&self.orders_url),
            payments: base(&self.payments_url),
            catalog: base(&self.catalog_url),
            orders_view: base(&self.orders_view_url),
            customers_view: base(&self.customers_view_url),
            projections: base(&self.projections_url),
        }
    }
}

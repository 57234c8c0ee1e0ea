//! The stack under test, as URLs, and the few HTTP calls the scenarios make.

use std::time::Duration;

use anyhow::Context;
use reqwest::{Client, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Where the stack's services listen.
#[derive(clap::Args, Debug, Clone)]
pub struct Urls {
    /// The gateway.
    #[arg(
        long = "url",
        env = "SHOP_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway: String,
    /// The inventory command service, for direct commands.
    #[arg(long, env = "INVENTORY_URL", default_value = "http://127.0.0.1:8081")]
    pub inventory_url: String,
    /// The customers command service.
    #[arg(long, env = "CUSTOMERS_URL", default_value = "http://127.0.0.1:8082")]
    pub customers_url: String,
    /// The orders command service.
    #[arg(long, env = "ORDERS_URL", default_value = "http://127.0.0.1:8083")]
    pub orders_url: String,
    /// The payments command service.
    #[arg(long, env = "PAYMENTS_URL", default_value = "http://127.0.0.1:8084")]
    pub payments_url: String,
    /// The projection worker, whose admin API rebuilds projections.
    #[arg(long, env = "PROJECTIONS_URL", default_value = "http://127.0.0.1:8090")]
    pub projections_url: String,
    /// The catalog query service, for direct product queries.
    #[arg(long, env = "CATALOG_URL", default_value = "http://127.0.0.1:8091")]
    pub catalog_url: String,
    /// The orders-view query service, for direct order queries.
    #[arg(long, env = "ORDERS_VIEW_URL", default_value = "http://127.0.0.1:8092")]
    pub orders_view_url: String,
    /// The customers-view query service.
    #[arg(
        long,
        env = "CUSTOMERS_VIEW_URL",
        default_value = "http://127.0.0.1:8093"
    )]
    pub customers_view_url: String,
}

impl Urls {
    /// Every service's base URL, by process name, for readiness checks.
    pub fn services(&self) -> [(&'static str, &str); 9] {
        [
            ("inventory", &self.inventory_url),
            ("customers", &self.customers_url),
            ("orders", &self.orders_url),
            ("payments", &self.payments_url),
            ("projection-worker", &self.projections_url),
            ("catalog", &self.catalog_url),
            ("orders-view", &self.orders_view_url),
            ("customers-view", &self.customers_view_url),
            ("gateway", &self.gateway),
        ]
        .map(|(name, url)| (name, url.trim_end_matches('/')))
    }
}

/// An answer that carries the aggregate's new or current version.
#[derive(Debug, Deserialize)]
pub struct Versioned {
    /// The aggregate's version: its last event sequence.
    pub version: i64,
}

/// A lean HTTP/1.1 client with enough idle connections for 32 clients per host.
pub fn client() -> anyhow::Result<Client> {
    Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("build an HTTP client")
}

/// POSTs `body` and reads a 2xx answer as `T`; any other answer is an error that
/// names the status.
pub async fn post<T: DeserializeOwned>(
    client: &Client,
    url: &str,
    body: &Value,
) -> Result<T, String> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|error| format!("POST {url}: {error}"))?;
    read(response, "POST", url).await
}

/// GETs `url` and reads a 2xx answer as `T`.
pub async fn get<T: DeserializeOwned>(client: &Client, url: &str) -> Result<T, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| format!("GET {url}: {error}"))?;
    read(response, "GET", url).await
}

async fn read<T: DeserializeOwned>(
    response: reqwest::Response,
    method: &str,
    url: &str,
) -> Result<T, String> {
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "{method} {url} answered {status}: {}",
            short(&body)
        ));
    }
    response
        .json()
        .await
        .map_err(|error| format!("{method} {url}: unreadable answer: {error}"))
}

/// POSTs `body` and returns the status, for calls where a 409 is as good as a 201.
pub async fn post_status(client: &Client, url: &str, body: &Value) -> anyhow::Result<StatusCode> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    Ok(response.status())
}

/// The first 200 characters of an error body.
fn short(body: &str) -> String {
    body.trim().chars().take(200).collect()
}

//! What the scenarios need before they start: 1,000 products (created once and
//! kept across runs), customers with ample credit, and a few orders to query.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use futures::{stream, StreamExt, TryStreamExt};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http::{self, Urls};

/// How many products the command load spreads over.
pub const PRODUCTS: usize = 1_000;

/// Requests in flight while setting up: few, so that the services' connection
/// pools stay small and leave the server connections for the ceiling.
const SETUP_CONCURRENCY: usize = 4;

/// Stock each product starts with: enough for every order a run places.
const INITIAL_STOCK: i64 = 1_000_000;

/// The benchmark's products and the last version seen of each.
pub struct Products {
    /// The skus, `BENCH-0000` to `BENCH-0999`.
    pub skus: Vec<String>,
    versions: Vec<AtomicI64>,
}

impl Products {
    /// The sku of the `index`-th request, spread round-robin over every product.
    pub fn sku(&self, index: u64) -> &str {
        // The index is reduced modulo the (small) product count, so it fits usize.
        &self.skus[(index % self.skus.len() as u64) as usize]
    }

    /// Records a version a command answered for `sku`'s product.
    pub fn saw_version(&self, index: u64, version: i64) {
        let slot = &self.versions[(index % self.skus.len() as u64) as usize];
        slot.fetch_max(version, Ordering::Relaxed);
    }

    /// The mean number of events per product, from the latest versions seen.
    pub fn mean_events(&self) -> i64 {
        let seen: Vec<i64> = self
            .versions
            .iter()
            .map(|version| version.load(Ordering::Relaxed))
            .filter(|version| *version > 0)
            .collect();
        if seen.is_empty() {
            return 1;
        }
        seen.iter().sum::<i64>() / seen.len() as i64
    }
}

/// Creates the benchmark's products through the inventory service, leaving the ones
/// an earlier run created (409) as they are, then restocks each once to learn its
/// version (the ceiling's aggregates are seeded to match).
pub async fn products(client: &Client, urls: &Urls) -> anyhow::Result<Arc<Products>> {
    let skus: Vec<String> = (0..PRODUCTS)
        .map(|index| format!("BENCH-{index:04}"))
        .collect();
    let url = format!("{}/api/products", urls.inventory_url);
    stream::iter(&skus)
        .map(|sku| {
            let body = json!({
                "sku": sku, "name": format!("Benchmark product {sku}"),
                "price_cents": 100, "initial_stock": INITIAL_STOCK,
            });
            let (client, url) = (client, &url);
            async move {
                match http::post_status(client, url, &body).await? {
                    StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
                    status => anyhow::bail!("POST {url} for {sku} answered {status}"),
                }
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<()>()
        .await
        .context("create the benchmark's products")?;
    let versions = (0..PRODUCTS).map(|_| AtomicI64::new(0)).collect();
    let products = Products { skus, versions };
    stream::iter(0..PRODUCTS as u64)
        .map(|index| {
            let url = format!(
                "{}/api/products/{}/restock",
                urls.inventory_url,
                products.sku(index)
            );
            let products = &products;
            async move {
                let answer: http::Versioned =
                    http::post(client, &url, &json!({"quantity": 1})).await?;
                products.saw_version(index, answer.version);
                Ok::<(), String>(())
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<()>()
        .await
        .map_err(anyhow::Error::msg)
        .context("restock each benchmark product once")?;
    Ok(Arc::new(products))
}

/// Creates `count` customers with a credit limit no benchmark can exhaust, through
/// the gateway; returns their ids.
pub async fn customers(client: &Client, urls: &Urls, count: usize) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Created {
        id: String,
    }
    let run = chrono::Utc::now().timestamp_millis();
    let url = format!("{}/api/customers", urls.gateway);
    stream::iter(0..count)
        .map(|index| {
            let body = json!({
                "name": format!("Benchmark customer {index}"),
                "email": format!("bench-{run}-{index}@example.com"),
                "credit_limit_cents": 1_000_000_000_000_i64,
            });
            let (client, url) = (client, &url);
            async move {
                http::post::<Created>(client, url, &body)
                    .await
                    .map(|created| created.id)
                    .map_err(anyhow::Error::msg)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("create the benchmark's customers")
}

/// The body of an order of one unit of one product.
pub fn order(customer_id: &str, sku: &str) -> serde_json::Value {
    json!({"customer_id": customer_id, "lines": [{"sku": sku, "quantity": 1}]})
}

//! Freshness: how long after a command's 2xx its change is visible in the query
//! service, at a steady command rate. Each command's product is read back with
//! `?min_version=` (the version the command answered), which the catalog holds
//! until its read model has caught up.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use serde_json::json;
use tokio::time::Instant;

use super::http::{self, Urls, Versioned};
use super::load::{self, Summary};
use super::setup::Products;

/// Sends `rate` restocks a second to the inventory service for `duration`, and
/// records for each the time from its answer until the catalog shows its version.
pub async fn measure(
    client: &Client,
    urls: &Urls,
    products: &Arc<Products>,
    rate: f64,
    duration: Duration,
) -> Summary {
    let body = json!({"quantity": 1});
    load::open_loop(rate, duration, |index| {
        let (client, products, body) = (client.clone(), products.clone(), body.clone());
        let sku = products.sku(index).to_owned();
        let command = format!("{}/api/products/{sku}/restock", urls.inventory_url);
        let query = format!("{}/api/products/{sku}", urls.catalog_url);
        async move {
            let answer: Versioned = http::post(&client, &command, &body).await?;
            let answered = Instant::now();
            products.saw_version(index, answer.version);
            wait_for_version(&client, &query, answer.version).await?;
            Ok(answered.elapsed())
        }
    })
    .await
}

/// Reads `url` with `?min_version=` until it shows `version`: the catalog waits up
/// to 2 s per request, and a request that comes back older is repeated.
pub async fn wait_for_version(client: &Client, url: &str, version: i64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("{url}?min_version={version}");
    loop {
        let outcome = http::get::<Versioned>(client, &url).await;
        match outcome {
            Ok(seen) if seen.version >= version => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(format!(
                    "{url} did not show version {version} in 30 s: {outcome:?}"
                ))
            }
            // A product the read model does not have yet answers 404 at once.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            Ok(_) => {}
        }
    }
}

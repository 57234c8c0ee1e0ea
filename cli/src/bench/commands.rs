//! Command throughput: Restock commands spread over the benchmark's products, from
//! N concurrent clients, straight to the inventory service or through the gateway.

use std::sync::Arc;

use reqwest::Client;
use serde_json::json;

use super::http::{self, Versioned};
use super::load::{self, Summary, Window};
use super::setup::Products;

/// Runs restocks against `base_url` (the inventory service or the gateway) from
/// `clients` clients for `window`.
pub async fn restock(
    client: &Client,
    base_url: &str,
    products: &Arc<Products>,
    clients: usize,
    window: Window,
) -> Summary {
    let (client, products) = (client.clone(), products.clone());
    let base_url = base_url.to_owned();
    let body = json!({"quantity": 1});
    load::closed_loop(clients, window, move |index| {
        let (client, products, body) = (client.clone(), products.clone(), body.clone());
        let url = format!("{base_url}/api/products/{}/restock", products.sku(index));
        async move {
            let answer: Versioned = http::post(&client, &url, &body).await?;
            products.saw_version(index, answer.version);
            Ok(())
        }
    })
    .await
}

//! Command throughput: Restock commands spread over the benchmark's products, from
//! N concurrent clients, straight to the inventory service or through the gateway;
//! and orders placed to fill the orders stream before a rebuild.

use std::sync::Arc;

use reqwest::Client;
use serde_json::json;

use super::http::{self, Versioned};
use super::load::{self, Recorder, Summary, Window};
use super::setup::Products;

/// Runs restocks against `base_url` (the inventory service or the gateway) from
/// `clients` clients for `window`.
pub async fn restock(
    client: &Client,
    base_url: &str,
    products: &Arc<Products>,
    clients: usize,
    window: Window,
) -> Recorder {
    let (client, products) = (client.clone(), products.clone());
    let base_url = base_url.to_owned();
    let body = json!({"quantity": 1});
    load::closed_loop_recorded(clients, window, move |index| {
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

/// Lines of each order that [`place_orders`] places: every line adds an
/// `OrderLineReserved` to the order's events.
const ORDER_LINES: u64 = 5;

/// Places orders of [`ORDER_LINES`] lines at `orders_url` from `clients` clients
/// for `window`, spread over `customers` and the benchmark's products.
pub async fn place_orders(
    client: &Client,
    orders_url: &str,
    products: &Arc<Products>,
    customers: &Arc<Vec<String>>,
    clients: usize,
    window: Window,
) -> Summary {
    let (client, products, customers) = (client.clone(), products.clone(), customers.clone());
    let url = format!("{orders_url}/api/orders");
    load::closed_loop(clients, window, move |index| {
        let customer = &customers[(index % customers.len().max(1) as u64) as usize];
        let lines: Vec<_> = (0..ORDER_LINES)
            .map(|line| json!({"sku": products.sku(index * ORDER_LINES + line), "quantity": 1}))
            .collect();
        let body = json!({"customer_id": customer, "lines": lines});
        let (client, url) = (client.clone(), url.clone());
        async move {
            http::post::<serde_json::Value>(&client, &url, &body).await?;
            Ok(())
        }
    })
    .await
}

//! Saga latency: from `POST /api/orders` until the order reads CONFIRMED, at a
//! steady rate of orders that can all be confirmed (ample stock and credit).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::Client;
use serde::Deserialize;
use tokio::time::Instant;

use super::http::{self, Urls};
use super::load::{self, Summary};
use super::setup::{self, Products};

/// An order as the query service shows it, as far as the saga needs.
#[derive(Debug, Deserialize)]
struct OrderView {
    status: String,
    reason: Option<String>,
    version: i64,
}

/// An order's answer to `POST /api/orders`.
#[derive(Debug, Deserialize)]
struct Placed {
    id: String,
    version: i64,
}

/// Places `rate` orders a second through the gateway for `duration`, spread over
/// `customers` and the benchmark's products, and records how long each took to be
/// CONFIRMED in the orders view. Returns the summary and the placed orders' ids.
pub async fn measure(
    client: &Client,
    urls: &Urls,
    products: &Arc<Products>,
    customers: &[String],
    rate: f64,
    duration: Duration,
) -> (Summary, Vec<String>) {
    let placed = Arc::new(Mutex::new(Vec::new()));
    let summary = load::open_loop(rate, duration, |index| {
        let customer = &customers[(index % customers.len().max(1) as u64) as usize];
        let body = setup::order(customer, products.sku(index));
        let (client, placed) = (client.clone(), placed.clone());
        let command = format!("{}/api/orders", urls.gateway);
        let view = format!("{}/api/orders", urls.orders_view_url);
        async move {
            let began = Instant::now();
            let order: Placed = http::post(&client, &command, &body).await?;
            placed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(order.id.clone());
            wait_until_confirmed(&client, &format!("{view}/{}", order.id), order.version).await?;
            Ok(began.elapsed())
        }
    })
    .await;
    let ids = std::mem::take(&mut *placed.lock().unwrap_or_else(PoisonError::into_inner));
    (summary, ids)
}

/// Places one order per customer and waits until each is CONFIRMED, unmeasured:
/// payments then knows every customer's credit, and a measured order never waits
/// for a customer it has not heard of yet. Returns how many were confirmed, and
/// the first error.
pub async fn warm_up(
    client: &Client,
    urls: &Urls,
    products: &Products,
    customers: &[String],
) -> (usize, Option<String>) {
    let orders = customers
        .iter()
        .enumerate()
        .map(|(index, customer)| async move {
            let body = setup::order(customer, products.sku(index as u64));
            let url = format!("{}/api/orders", urls.gateway);
            let order: Placed = http::post(client, &url, &body).await?;
            let view = format!("{}/api/orders/{}", urls.orders_view_url, order.id);
            wait_until_confirmed(client, &view, order.version).await
        });
    let outcomes = futures::future::join_all(orders).await;
    let confirmed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    (confirmed, outcomes.into_iter().find_map(Result::err))
}

/// Follows an order's versions with `?min_version=` (the orders view waits for
/// each next one) until it is CONFIRMED; any other final status is an error.
async fn wait_until_confirmed(client: &Client, url: &str, placed: i64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = placed;
    while Instant::now() < deadline {
        match http::get::<OrderView>(client, &format!("{url}?min_version={next}")).await {
            Ok(order) if order.status == "CONFIRMED" => return Ok(()),
            Ok(order) if order.status == "PENDING" => next = order.version + 1,
            Ok(order) => {
                return Err(format!(
                    "order {url} ended {} ({})",
                    order.status,
                    order.reason.unwrap_or_default()
                ))
            }
            // Not in the read model yet: 404 at once.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    Err(format!("{url} was not CONFIRMED within 30 s"))
}

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
/// CONFIRMED in the orders view. Each order is first asked for at the version
/// `steps_to_confirm` past the one it was placed at, which the warm-up learned.
/// Returns the summary and the placed orders' ids.
pub async fn measure(
    client: &Client,
    urls: &Urls,
    products: &Arc<Products>,
    customers: &[String],
    steps_to_confirm: i64,
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
            let url = format!("{view}/{}", order.id);
            wait_until_confirmed(&client, &url, order.version, steps_to_confirm).await?;
            Ok(began.elapsed())
        }
    })
    .await;
    let ids = std::mem::take(&mut *placed.lock().unwrap_or_else(PoisonError::into_inner));
    (summary, ids)
}

/// What the warm-up's orders showed.
#[derive(Debug)]
pub struct WarmUp {
    /// How many of them were confirmed.
    pub confirmed: usize,
    /// How many versions past the one it was placed at an order reads CONFIRMED
    /// (the fewest seen; 0 when none was confirmed).
    pub steps_to_confirm: i64,
    /// The first error.
    pub error: Option<String>,
}

/// Places one order per customer and waits until each is CONFIRMED, unmeasured:
/// payments then knows every customer's credit, and a measured order never waits
/// for a customer it has not heard of yet. The warm-up follows each order through
/// every version, and so learns which version confirms one.
pub async fn warm_up(
    client: &Client,
    urls: &Urls,
    products: &Products,
    customers: &[String],
) -> WarmUp {
    let orders = customers
        .iter()
        .enumerate()
        .map(|(index, customer)| async move {
            let body = setup::order(customer, products.sku(index as u64));
            let url = format!("{}/api/orders", urls.gateway);
            let order: Placed = http::post(client, &url, &body).await?;
            let view = format!("{}/api/orders/{}", urls.orders_view_url, order.id);
            let confirmed = wait_until_confirmed(client, &view, order.version, 0).await?;
            Ok::<_, String>(confirmed - order.version)
        });
    let outcomes = futures::future::join_all(orders).await;
    let steps = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok());
    WarmUp {
        confirmed: steps.clone().count(),
        steps_to_confirm: steps.min().copied().unwrap_or(0),
        error: outcomes.into_iter().find_map(Result::err),
    }
}

/// Follows an order with `?min_version=` (the orders view waits for that version)
/// until it is CONFIRMED, and returns the version it was confirmed at. It asks
/// first for the version `steps` past `placed`, where the warm-up saw orders
/// confirmed: one request rather than one per step of the saga. While the order is
/// PENDING it asks for the next version; any other final status is an error, and
/// so is a confirmation before the version asked for, whose time would include
/// the view's 2 s wait.
async fn wait_until_confirmed(
    client: &Client,
    url: &str,
    placed: i64,
    steps: i64,
) -> Result<i64, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = placed + steps;
    while Instant::now() < deadline {
        match http::get::<OrderView>(client, &format!("{url}?min_version={next}")).await {
            Ok(order) if order.status == "CONFIRMED" && order.version >= next => {
                return Ok(order.version)
            }
            Ok(order) if order.status == "CONFIRMED" => {
                return Err(format!(
                    "order {url} was confirmed at version {}, before version {next}",
                    order.version
                ))
            }
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

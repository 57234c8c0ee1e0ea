//! The recorder of `tests/fixtures/saga.jsonl`: it runs a saga that ends in every
//! order status through the whole stack, reads the four streams back from NATS,
//! checks that replaying them rebuilds the live read models row for row, and
//! compares them with the fixture. `RECORD_FIXTURES=1` writes the fixture anew.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use platform::Envelope;
use projections::app::PROJECTIONS;
use projections::{diff, record, replay};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

const SERVICES: [&str; 4] = ["customers", "inventory", "orders", "payments"];

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/saga.jsonl")
}

async fn send(stack: &Stack, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = stack
        .client
        .request(method, stack.url(path))
        .json(&body)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path} answered {status}: {body}");
    body
}

async fn post(stack: &Stack, path: &str, body: Value) -> Value {
    send(stack, reqwest::Method::POST, path, body).await
}

async fn customer(stack: &Stack, name: &str, credit_limit_cents: i64) -> String {
    let email = format!("{}@example.com", name.to_lowercase());
    let body = json!({"name": name, "email": email, "credit_limit_cents": credit_limit_cents});
    let created = post(stack, "/api/customers", body).await;
    created["id"].as_str().expect("customer id").to_owned()
}

/// Places an order and waits until it reaches `status`.
async fn order(stack: &Stack, customer_id: &str, lines: Value, status: &str) -> String {
    let body = json!({"customer_id": customer_id, "lines": lines});
    let (code, placed) = stack.post("/api/orders", body).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{placed}");
    let id = placed["id"].as_str().expect("order id").to_owned();
    wait_for(stack, &id, status).await;
    id
}

async fn wait_for(stack: &Stack, order_id: &str, status: &str) {
    let settled = stack
        .eventually(&format!("/api/orders/{order_id}"), |o| {
            o["status"] != "PENDING"
        })
        .await;
    assert_eq!(settled["status"], status, "{settled}");
}

/// A saga that uses every event type the projections consume: products added,
/// restocked and repriced; customers registered, given a new limit and
/// deactivated; orders shipped, cancelled, and rejected for each reason.
async fn run_saga(stack: &Stack) {
    for (sku, price, stock) in [("MUG", 1250, 10), ("TEE", 2000, 2), ("POSTER", 500, 0)] {
        let body = json!({"sku": sku, "name": sku, "price_cents": price, "initial_stock": stock});
        post(stack, "/api/products", body).await;
    }
    post(
        stack,
        "/api/products/POSTER/restock",
        json!({"quantity": 5}),
    )
    .await;
    let price = json!({"price_cents": 600});
    send(
        stack,
        reqwest::Method::PUT,
        "/api/products/POSTER/price",
        price,
    )
    .await;

    let ada = customer(stack, "Ada", 100_000).await;
    let bob = customer(stack, "Bob", 3_000).await;
    let cy = customer(stack, "Cy", 50_000).await;
    let limit = json!({"credit_limit_cents": 120_000});
    let path = format!("/api/customers/{ada}/credit-limit");
    send(stack, reqwest::Method::PUT, &path, limit).await;
    post(stack, &format!("/api/customers/{cy}/deactivate"), json!({})).await;

    let shipped = order(
        stack,
        &ada,
        json!([{"sku": "MUG", "quantity": 2}]),
        "CONFIRMED",
    )
    .await;
    post(stack, &format!("/api/orders/{shipped}/ship"), json!({})).await;
    let lines = json!([{"sku": "POSTER", "quantity": 1}, {"sku": "TEE", "quantity": 1}]);
    let cancelled = order(stack, &ada, lines, "CONFIRMED").await;
    let reason = json!({"reason": "changed my mind"});
    post(stack, &format!("/api/orders/{cancelled}/cancel"), reason).await;
    let lines = json!([{"sku": "MUG", "quantity": 1}, {"sku": "TEE", "quantity": 5}]);
    order(stack, &ada, lines, "REJECTED").await;
    order(
        stack,
        &ada,
        json!([{"sku": "NOPE", "quantity": 1}]),
        "REJECTED",
    )
    .await;
    order(
        stack,
        &bob,
        json!([{"sku": "MUG", "quantity": 3}]),
        "REJECTED",
    )
    .await;
    order(
        stack,
        &cy,
        json!([{"sku": "MUG", "quantity": 1}]),
        "REJECTED",
    )
    .await;
    let stranger = "01900000-0000-7000-8000-000000000000";
    order(
        stack,
        stranger,
        json!([{"sku": "POSTER", "quantity": 1}]),
        "REJECTED",
    )
    .await;

    for (order_id, status) in [(&shipped, "SHIPPED"), (&cancelled, "CANCELLED")] {
        stack
            .eventually(&format!("/api/orders/{order_id}"), |o| {
                o["status"] == status
            })
            .await;
    }
}

/// The service and type of every event, which the saga decides; ids, times,
/// counts (concurrent reactions interleave differently from run to run) and
/// schema versions (the fixture keeps its v1 events when an event gets a v2) may
/// differ.
fn event_types(envelopes: &[Envelope]) -> BTreeSet<(String, String)> {
    envelopes
        .iter()
        .map(|e| (e.service.clone(), e.event_type.clone()))
        .collect()
}

#[tokio::test]
async fn the_saga_fixture_has_every_event_type_the_saga_records_today() {
    let stack = Stack::start().await;
    run_saga(&stack).await;
    stack.wait_until_consumers_are_idle().await;

    let client = platform::nats::connect(&platform::testing::nats_url())
        .await
        .expect("nats");
    let jetstream = async_nats::jetstream::new(client);
    let everything = Default::default();
    let recorded = record::read_streams(&jetstream, &stack.namespace, &SERVICES, &everything)
        .await
        .expect("read the streams");

    // Replaying what was recorded rebuilds each live read model, row for row.
    let live = &stack.db("read_models").pool;
    let server = platform::testing::server_options();
    for projection in PROJECTIONS {
        let diff = diff::replay_diff(live, &server, projection, &recorded)
            .await
            .expect("replay-diff");
        assert!(diff.is_empty(), "{} differs:\n{diff}", projection.name);
    }

    if std::env::var("RECORD_FIXTURES").is_ok_and(|v| v == "1") {
        replay::write_fixture(fixture_path(), &recorded).expect("write the fixture");
    }
    let fixture = replay::read_fixture(fixture_path()).expect("read the fixture");
    assert_eq!(event_types(&fixture), event_types(&recorded));
    stack.stop().await;
}

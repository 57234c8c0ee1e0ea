//! The projection admin API through the gateway, on the whole stack.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

/// Whether every source of every projection has nothing left to apply.
fn caught_up(list: &Value) -> bool {
    let Some(items) = list["items"].as_array() else {
        return false;
    };
    items.iter().all(|projection| {
        projection["sources"]
            .as_array()
            .is_some_and(|sources| sources.iter().all(|source| source["lag"] == 0))
    })
}

#[tokio::test]
async fn after_an_order_every_projection_catches_up() {
    let stack = Stack::start().await;
    let (status, body) = stack
        .post(
            "/api/products",
            json!({"sku": "MUG", "name": "Mug", "price_cents": 1250, "initial_stock": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = stack
        .post(
            "/api/customers",
            json!({"name": "Ada", "email": "ada@example.com", "credit_limit_cents": 100_000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let customer_id = body["id"].as_str().expect("customer id").to_owned();
    let (status, body) = stack
        .post(
            "/api/orders",
            json!({"customer_id": customer_id, "lines": [{"sku": "MUG", "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order_id = body["id"].as_str().expect("order id").to_owned();
    stack
        .eventually(&format!("/api/orders/{order_id}"), |o| {
            o["status"] == "CONFIRMED"
        })
        .await;

    let list = stack.eventually("/api/admin/projections", caught_up).await;

    let items = list["items"].as_array().expect("items");
    let names: Vec<&str> = items.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "products",
            "orders",
            "customers",
            "payments",
            "notifications"
        ]
    );
    for projection in items {
        assert_eq!(projection["status"], "LIVE", "{projection}");
        assert!(projection["rows"].as_i64() >= Some(1), "{projection}");
        for source in projection["sources"].as_array().expect("sources") {
            assert!(source["position"].as_u64() >= Some(1), "{projection}");
        }
    }
    let (status, orders) = stack.get("/api/admin/projections/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders["rows"], 1);
    let (status, _) = stack.get("/api/admin/projections/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, openapi) = stack.get("/api/openapi.json").await;
    assert!(openapi["paths"]["/api/admin/projections/{name}"].is_object());
    stack.stop().await;
}

//! Event streams and time travel through the gateway: an order's history is
//! replayable, and its state can be read as it was after any of its events.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::Stack;

#[tokio::test]
async fn an_order_can_be_read_as_it_was_before_the_saga_confirmed_it() {
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

    let current = stack
        .eventually(&format!("/api/orders/{order_id}/state"), |s| {
            s["state"]["status"] == "CONFIRMED"
        })
        .await;
    assert_eq!(current["aggregate_type"], "Order");
    assert_eq!(current["aggregate_id"], json!(order_id));
    let (status, placed) = stack
        .get(&format!("/api/orders/{order_id}/state?version=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{placed}");
    assert_eq!(placed["version"], 1);
    assert_eq!(placed["state"]["status"], "PENDING");

    let (status, stream) = stack.get(&format!("/api/orders/{order_id}/events")).await;
    assert_eq!(status, StatusCode::OK, "{stream}");
    let events = stream["events"].as_array().expect("events");
    assert_eq!(events[0]["event_type"], "OrderPlaced");
    assert_eq!(json!(events.len()), current["version"]);

    let (status, payment) = stack.get(&format!("/api/payments/{order_id}/state")).await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    assert_eq!(payment["state"]["status"], "AUTHORIZED");
    let (status, unknown) = stack
        .get("/api/orders/0190a0f6-5b1c-7c3e-8f00-00000000dead/state")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    stack.stop().await;
}

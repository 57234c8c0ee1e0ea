//! One request through every service: the gateway's trace gathers the events that
//! carry the request's id from every command service and puts them in causal order.

mod support;

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

#[tokio::test]
async fn the_trace_of_a_confirmed_order_holds_every_service_s_events_each_after_its_cause() {
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

    let request_id = format!("trace-{}", uuid::Uuid::now_v7());
    let response = stack
        .client
        .post(stack.url("/api/orders"))
        .header("x-request-id", &request_id)
        .json(&json!({"customer_id": customer_id, "lines": [{"sku": "MUG", "quantity": 2}]}))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let order: Value = response.json().await.expect("json");
    let order_id = order["id"].as_str().expect("order id").to_owned();
    stack
        .eventually(&format!("/api/orders/{order_id}"), |o| {
            o["status"] == "CONFIRMED"
        })
        .await;
    // Every reaction to the request has been stored once the consumers are idle.
    stack.wait_until_consumers_are_idle().await;

    let (status, trace) = stack.get(&format!("/api/trace/{request_id}")).await;
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert_eq!(trace["correlation_id"], json!(request_id));
    let events = trace["events"].as_array().expect("events");
    let of = |service: &str| -> Vec<&str> {
        events
            .iter()
            .filter(|e| e["service"] == service)
            .filter_map(|e| e["event_type"].as_str())
            .collect()
    };
    assert_eq!(
        of("orders"),
        [
            "OrderPlaced",
            "OrderLineReserved",
            "OrderStockReserved",
            "OrderConfirmed"
        ],
        "{trace}"
    );
    assert_eq!(of("inventory"), ["StockReserved"], "{trace}");
    assert_eq!(
        of("payments"),
        ["CreditReserved", "PaymentAuthorized"],
        "{trace}"
    );
    assert!(of("customers").is_empty(), "{trace}");
    assert!(events
        .iter()
        .all(|e| e["metadata"]["correlation_id"] == json!(request_id)));

    // Each event comes after its cause; only the request's own event has none.
    let position: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(index, e)| (e["event_id"].as_str().expect("event id"), index))
        .collect();
    for (index, event) in events.iter().enumerate() {
        let cause = event["metadata"]["causation_id"]
            .as_str()
            .expect("causation id");
        match position.get(cause) {
            Some(&cause_index) => assert!(cause_index < index, "{event} before its cause"),
            None => {
                assert_eq!(cause, request_id, "{event} names an unknown cause");
                assert_eq!(event["event_type"], "OrderPlaced");
            }
        }
    }
    assert_eq!(events[0]["event_type"], "OrderPlaced");
    assert_eq!(
        events.last().expect("events")["event_type"],
        "OrderConfirmed"
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_unknown_correlation_id_is_a_404_problem_and_the_trace_is_documented() {
    let stack = Stack::start().await;
    let response = stack
        .client
        .get(stack.url("/api/trace/no-such-request"))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["status"], 404);

    let (_, openapi) = stack.get("/api/openapi.json").await;
    assert!(
        openapi["paths"]["/api/trace/{correlation_id}"]["get"].is_object(),
        "the trace is documented"
    );
    stack.stop().await;
}

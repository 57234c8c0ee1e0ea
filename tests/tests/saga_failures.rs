//! Saga failures stay visible: when another service refuses a compensation, the
//! order says that an operator is needed, with the error, instead of looking done.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

/// Adds a product and registers a customer; returns the customer's id.
async fn product_and_customer(stack: &Stack, sku: &str) -> String {
    let (status, body) = stack
        .post(
            "/api/products",
            json!({"sku": sku, "name": sku, "price_cents": 1000, "initial_stock": 10}),
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
    body["id"].as_str().expect("customer id").to_owned()
}

/// Places an order for 2 units of `sku` and waits until it is CONFIRMED.
async fn confirmed_order(stack: &Stack, customer_id: &str, sku: &str) -> String {
    let (status, body) = stack
        .post(
            "/api/orders",
            json!({"customer_id": customer_id, "lines": [{"sku": sku, "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order = body["id"].as_str().expect("order id").to_owned();
    stack
        .eventually(&format!("/api/orders/{order}"), |o| {
            o["status"] == "CONFIRMED"
        })
        .await;
    order
}

/// Appends an event to an aggregate in a service's event store, as an operator
/// or a diverged store would have it, behind the service's back.
async fn seed_event(
    stack: &Stack,
    service: &str,
    aggregate: (&str, &str),
    event_type: &str,
    payload: Value,
) {
    let (aggregate_type, aggregate_id) = aggregate;
    sqlx::query(
        "INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT $1, $2, COALESCE(max(sequence), 0) + 1, $3, '1.0', $4, '{}'
           FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(event_type)
    .bind(payload)
    .execute(&stack.db(service).pool)
    .await
    .expect("seed an event");
}

async fn cancel(stack: &Stack, order: &str) {
    let (status, body) = stack
        .post(&format!("/api/orders/{order}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Waits until the order is CANCELLED and shows an operator is needed.
async fn needs_an_operator(stack: &Stack, order: &str) -> Value {
    stack
        .eventually(&format!("/api/orders/{order}"), |o| {
            o["status"] == "CANCELLED" && !o["operator_needed"].is_null()
        })
        .await["operator_needed"]
        .clone()
}

#[tokio::test]
async fn refused_compensations_show_on_the_order_and_a_normal_cancellation_does_not() {
    let stack = Stack::start().await;
    let mug_buyer = product_and_customer(&stack, "MUG").await;
    let tea_buyer = product_and_customer(&stack, "TEA").await;
    let pen_buyer = product_and_customer(&stack, "PEN").await;
    let shipped_stock = confirmed_order(&stack, &mug_buyer, "MUG").await;
    let captured = confirmed_order(&stack, &tea_buyer, "TEA").await;
    let normal = confirmed_order(&stack, &pen_buyer, "PEN").await;
    stack.wait_until_consumers_are_idle().await;

    // The mugs already left the warehouse, and the tea was already charged.
    seed_event(
        &stack,
        "inventory",
        ("Product", "MUG"),
        "ReservationCommitted",
        json!({"ReservationCommitted": {"order_id": shipped_stock, "quantity": 2}}),
    )
    .await;
    seed_event(
        &stack,
        "payments",
        ("Payment", &captured),
        "PaymentCaptured",
        json!({"PaymentCaptured": {"amount_cents": 2000}}),
    )
    .await;
    for order in [&shipped_stock, &captured, &normal] {
        cancel(&stack, order).await;
    }

    let stock = needs_an_operator(&stack, &shipped_stock).await;
    assert_eq!(stock["step"], "RELEASE_STOCK");
    assert_eq!(
        stock["error"],
        "MUG: the 2 units held for the order were already shipped"
    );
    assert!(stock["at"].is_string(), "{stock}");
    let payment = needs_an_operator(&stack, &captured).await;
    assert_eq!(payment["step"], "VOID_PAYMENT");
    assert_eq!(
        payment["error"],
        "the payment of 2000 cents was already captured and cannot be voided"
    );

    // The normal cancellation compensates fully and needs nobody.
    stack
        .eventually(&format!("/api/payments/{normal}"), |p| {
            p["status"] == "VOIDED"
        })
        .await;
    stack
        .eventually("/api/products/PEN", |p| p["reserved"] == 0)
        .await;
    stack.wait_until_consumers_are_idle().await;
    let (_, order) = stack.get(&format!("/api/orders/{normal}")).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["operator_needed"], Value::Null, "{order}");

    // The refusals are events, in the refusing services' logs and on the orders.
    assert_eq!(
        stack
            .count_events("inventory", "ReservationReleaseRefused")
            .await,
        1
    );
    assert_eq!(
        stack.count_events("payments", "PaymentVoidRefused").await,
        1
    );
    assert_eq!(stack.count_events("orders", "CompensationFailed").await, 2);
    stack.stop().await;
}

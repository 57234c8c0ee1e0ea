//! The saga end to end: customer and order events published to JetStream as their
//! relays publish them, the payments service consuming them, and the payment event
//! streams and credit it produces.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::payments::CustomerCredit;
use domain::values::Money;
use serde_json::{json, Value};
use support::saga::Saga;
use support::{Customer, Order};

/// The wait for unknown customers where the test does not exercise it.
const WAIT_MS: u64 = 500;

fn money(cents: i64) -> Money {
    Money::from_cents(cents).expect("valid amount")
}

fn recorded_at(event: &Value) -> DateTime<Utc> {
    serde_json::from_value(event["recorded_at"].clone()).expect("recorded_at")
}

/// Registers a customer with a credit limit and returns it once payments knows it,
/// so that no order of the test waits for it.
async fn registered(saga: &Saga, credit_limit_cents: i64) -> Customer {
    let mut customer = Customer::new();
    saga.publish(&[customer.registered(credit_limit_cents)])
        .await;
    saga.account_opened(customer.id).await;
    customer
}

/// Places an order with a total and returns it once payments has decided.
async fn decided(saga: &Saga, customer: &Customer, total_cents: i64) -> (Order, Value) {
    let mut order = Order::new(customer.id);
    saga.publish(&order.placed_with_total(total_cents)).await;
    let events = saga.payment_events(order.id, 1).await;
    (order, events[0].clone())
}

#[tokio::test]
async fn an_order_within_the_credit_limit_is_authorized_and_holds_its_total() {
    let saga = Saga::start(WAIT_MS).await;
    let customer = registered(&saga, 10_000).await;
    let mut order = Order::new(customer.id);
    let placed = order.placed_with_total(7_500);
    saga.publish(&placed).await;

    let events = saga.payment_events(order.id, 1).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        event["event_id"],
        format!("payments:Payment:{}:1", order.id)
    );
    assert_eq!(event["event_type"], "PaymentAuthorized");
    assert_eq!(
        event["payload"],
        json!({"order_id": order.id, "customer_id": customer.id, "amount_cents": 7_500})
    );
    assert_eq!(event["metadata"]["correlation_id"], order.correlation_id);
    assert_eq!(event["metadata"]["causation_id"], placed[1].event_id);

    let credit = saga.credit(customer.id).await;
    assert_eq!(credit.reserved(), money(7_500));
    assert_eq!(credit.available(), money(2_500));
    saga.stop().await;
}

#[tokio::test]
async fn an_order_over_the_credit_limit_is_declined_for_insufficient_credit() {
    let saga = Saga::start(WAIT_MS).await;
    let customer = registered(&saga, 10_000).await;
    let (_, event) = decided(&saga, &customer, 10_001).await;
    assert_eq!(event["event_type"], "PaymentDeclined");
    assert_eq!(event["payload"]["reason"], "INSUFFICIENT_CREDIT");
    assert_eq!(event["payload"]["amount_cents"], 10_001);
    assert_eq!(saga.credit(customer.id).await.available(), money(10_000));
    saga.stop().await;
}

#[tokio::test]
async fn a_raised_credit_limit_lets_a_larger_order_through() {
    let saga = Saga::start(WAIT_MS).await;
    let mut customer = registered(&saga, 1_000).await;
    saga.publish(&[customer.limit_changed(50_000)]).await;
    let limit = money(50_000);
    saga.credit_when(customer.id, |credit| credit.credit_limit() == limit)
        .await;
    let (_, event) = decided(&saga, &customer, 40_000).await;
    assert_eq!(event["event_type"], "PaymentAuthorized");
    saga.stop().await;
}

#[tokio::test]
async fn an_order_of_a_deactivated_customer_is_declined_as_inactive() {
    let saga = Saga::start(WAIT_MS).await;
    let mut customer = registered(&saga, 10_000).await;
    saga.publish(&[customer.deactivated()]).await;
    saga.credit_when(customer.id, CustomerCredit::is_suspended)
        .await;
    let (_, event) = decided(&saga, &customer, 100).await;
    assert_eq!(event["event_type"], "PaymentDeclined");
    assert_eq!(event["payload"]["reason"], "CUSTOMER_INACTIVE");
    saga.stop().await;
}

#[tokio::test]
async fn an_order_of_a_customer_never_heard_of_is_declined_as_unknown_after_the_wait() {
    let saga = Saga::start(WAIT_MS).await;
    let mut order = Order::new(uuid::Uuid::now_v7());
    let placed = order.placed_with_total(100);
    saga.publish(&placed).await;

    let events = saga.payment_events(order.id, 1).await;
    assert_eq!(events[0]["event_type"], "PaymentDeclined");
    assert_eq!(events[0]["payload"]["reason"], "UNKNOWN_CUSTOMER");
    let waited = recorded_at(&events[0]) - placed[1].recorded_at;
    assert!(
        waited >= chrono::Duration::milliseconds(WAIT_MS as i64),
        "declined after {waited}"
    );
    assert!(!saga.credit(order.customer_id).await.is_open());
    saga.stop().await;
}

#[tokio::test]
async fn a_customer_registered_shortly_after_the_order_is_still_authorized() {
    let saga = Saga::start(5_000).await;
    let mut customer = Customer::new();
    let mut order = Order::new(customer.id);
    saga.publish(&order.placed_with_total(2_000)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    saga.publish(&[customer.registered(10_000)]).await;

    let history = saga.payment_history(order.id, 1).await;
    assert_eq!(history, ["PaymentAuthorized"]);
    assert_eq!(saga.credit(customer.id).await.reserved(), money(2_000));
    saga.stop().await;
}

#[tokio::test]
async fn waiting_for_an_unknown_customer_keeps_no_transaction_open() {
    let saga = Saga::start(5_000).await;
    let mut customer = Customer::new();
    let mut order = Order::new(customer.id);
    saga.publish(&order.placed_with_total(2_000)).await;
    // Meanwhile the orders consumer keeps retrying. A transaction held open across
    // those retries would stop every relay on the cluster from publishing the
    // registration it waits for.
    let watch_until = std::time::Instant::now() + Duration::from_millis(2_500);
    while std::time::Instant::now() < watch_until {
        let oldest = saga.oldest_writing_transaction().await;
        assert!(
            oldest.is_none_or(|age| age < Duration::from_millis(500)),
            "a transaction open for {oldest:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(saga.get_events(order.id).await.0, 404, "still waiting");
    saga.publish(&[customer.registered(10_000)]).await;
    assert_eq!(
        saga.payment_history(order.id, 1).await,
        ["PaymentAuthorized"]
    );
    saga.stop().await;
}

#[tokio::test]
async fn the_second_of_two_orders_that_together_exceed_the_limit_is_declined() {
    let saga = Saga::start(WAIT_MS).await;
    let customer = registered(&saga, 10_000).await;
    let (_, first) = decided(&saga, &customer, 6_000).await;
    let (_, second) = decided(&saga, &customer, 5_000).await;
    assert_eq!(first["event_type"], "PaymentAuthorized");
    assert_eq!(second["event_type"], "PaymentDeclined");
    assert_eq!(second["payload"]["reason"], "INSUFFICIENT_CREDIT");
    let (_, third) = decided(&saga, &customer, 4_000).await;
    assert_eq!(
        third["event_type"], "PaymentAuthorized",
        "exactly what is left"
    );
    assert_eq!(saga.credit(customer.id).await.available(), Money::ZERO);
    saga.stop().await;
}

#[tokio::test]
async fn cancelling_an_order_voids_its_payment_and_frees_its_credit() {
    let saga = Saga::start(WAIT_MS).await;
    let customer = registered(&saga, 10_000).await;
    let (mut first, _) = decided(&saga, &customer, 8_000).await;
    saga.publish(&[first.confirmed(8_000), first.cancelled()])
        .await;
    let history = saga.payment_history(first.id, 2).await;
    assert_eq!(history, ["PaymentAuthorized", "PaymentVoided"]);

    let (_, later) = decided(&saga, &customer, 9_000).await;
    assert_eq!(
        later["event_type"], "PaymentAuthorized",
        "fits only after the void"
    );
    assert_eq!(saga.credit(customer.id).await.reserved(), money(9_000));
    saga.stop().await;
}

#[tokio::test]
async fn shipping_an_order_captures_its_payment_and_charges_the_credit() {
    let saga = Saga::start(WAIT_MS).await;
    let customer = registered(&saga, 10_000).await;
    let (mut order, _) = decided(&saga, &customer, 3_000).await;
    saga.publish(&[order.confirmed(3_000), order.shipped()])
        .await;
    let events = saga.payment_events(order.id, 2).await;
    assert_eq!(events[1]["event_type"], "PaymentCaptured");
    assert_eq!(events[1]["payload"], json!({"amount_cents": 3_000}));
    assert_eq!(
        events[1]["metadata"]["correlation_id"],
        order.correlation_id
    );

    let credit = saga.credit(customer.id).await;
    assert_eq!(
        (credit.reserved(), credit.captured(), credit.available()),
        (Money::ZERO, money(3_000), money(7_000))
    );
    saga.stop().await;
}

#[tokio::test]
async fn delivering_every_event_twice_changes_nothing() {
    let saga = Saga::start(WAIT_MS).await;
    let mut customer = Customer::new();
    let mut shipped = Order::new(customer.id);
    let mut cancelled = Order::new(customer.id);
    let mut declined = Order::new(customer.id);
    let mut everything = vec![customer.registered(10_000)];
    saga.publish(&everything).await;
    saga.account_opened(customer.id).await;
    everything.extend(shipped.placed_with_total(6_000));
    everything.extend([shipped.confirmed(6_000), shipped.shipped()]);
    everything.extend(cancelled.placed_with_total(3_000));
    everything.extend([cancelled.confirmed(3_000), cancelled.cancelled()]);
    everything.extend(declined.placed_with_total(5_000));
    saga.publish(&everything[1..]).await;
    saga.payment_history(shipped.id, 2).await;
    saga.payment_history(cancelled.id, 2).await;
    saga.payment_history(declined.id, 1).await;
    let stored = saga.stored_events().await;

    saga.publish_again(&everything).await;
    // Each stream is consumed in order, so once this customer's order is decided,
    // both consumers are past the repeats.
    let marker = registered(&saga, 1_000).await;
    decided(&saga, &marker, 1_000).await;

    assert_eq!(
        saga.stored_events().await,
        stored + 3,
        "only the marker's events"
    );
    let shipped_history = saga.payment_history(shipped.id, 2).await;
    assert_eq!(shipped_history, ["PaymentAuthorized", "PaymentCaptured"]);
    let cancelled_history = saga.payment_history(cancelled.id, 2).await;
    assert_eq!(cancelled_history, ["PaymentAuthorized", "PaymentVoided"]);
    let declined_history = saga.payment_history(declined.id, 1).await;
    assert_eq!(declined_history, ["PaymentDeclined"]);
    let credit = saga.credit(customer.id).await;
    assert_eq!(
        (credit.reserved(), credit.captured()),
        (Money::ZERO, money(6_000))
    );
    saga.stop().await;
}

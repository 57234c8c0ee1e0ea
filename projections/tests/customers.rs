//! The customers read model against real PostgreSQL and NATS: its profile comes
//! from the customers stream and its counters from the orders and payments
//! streams, in whatever order they arrive.

mod support;

use std::time::Duration;

use domain::orders::{OrderEvent, OrderStatus};
use domain::payments::PaymentEvent;
use platform::testing::TestDb;
use projections::customers::{self as read_model, FROM_ORDERS, FROM_PAYMENTS};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use support::{
    applied, assert_handed_over_only, confirm, placed, registered, snapshot, story, History,
    Streams, Worker,
};
use uuid::Uuid;

/// registered, name, credit limit, available credit, active, orders, lifetime spend, version.
type CustomerRow = (
    bool,
    Option<String>,
    Option<i64>,
    Option<i64>,
    bool,
    i64,
    i64,
    i64,
);

async fn customer(pool: &PgPool, id: Uuid) -> Option<CustomerRow> {
    sqlx::query_as(
        "SELECT registered, name, credit_limit_cents, available_credit_cents, active,
                orders_count, lifetime_spend_cents, version
           FROM customers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_customers_counters_follow_its_orders_and_payments() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;

    // Authorized: the shipped order's 2450 (captured since) and the confirmed
    // order's 1000; the cancelled order's 3000 was voided. Spend: the shipped and
    // the confirmed order; the cancelled one was taken back.
    let ada = (
        true,
        Some("Ada".into()),
        Some(150_000),
        Some(146_550),
        true,
        6,
        3450,
        2,
    );
    assert_eq!(customer(&db.pool, story.ada).await, Some(ada));
    let bob = (
        true,
        Some("Bob".into()),
        Some(20_000),
        Some(20_000),
        false,
        0,
        0,
        2,
    );
    assert_eq!(customer(&db.pool, story.bob).await, Some(bob));

    worker.stop().await;
    streams.delete().await;
}

#[tokio::test]
async fn only_the_order_and_payment_events_that_move_a_counter_are_handed_over() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;
    let envelopes = &story.history.envelopes;

    // The counters above came out right, so nothing they needed was passed over;
    // the saga's steps in between never reached the read model's transactions.
    let orders = ("Order", read_model::ORDER_EVENTS);
    assert_handed_over_only(&db.pool, FROM_ORDERS, envelopes, orders).await;
    let payments = ("Payment", read_model::PAYMENT_EVENTS);
    assert_handed_over_only(&db.pool, FROM_PAYMENTS, envelopes, payments).await;

    worker.stop().await;
    streams.delete().await;
}

#[tokio::test]
async fn customers_are_announced_by_their_own_events_only_and_notifications_never() {
    let story = story();
    let db = TestDb::new(&[]).await.unwrap();
    let mut streams = Streams::new().await;
    let worker = Worker::start(&db, &streams).await;
    let mut listener = PgListener::connect_with(&db.pool).await.unwrap();
    listener.listen(platform::changes::CHANNEL).await.unwrap();
    streams.publish(&story.history.envelopes).await;
    streams.wait_until_applied().await;
    worker.stop().await;

    let mut customers = Vec::new();
    // Every batch has committed, so its announcement has been sent.
    let next = Duration::from_millis(500);
    while let Ok(Ok(notification)) = tokio::time::timeout(next, listener.recv()).await {
        let mut lines = notification.payload().lines();
        match lines.next() {
            Some("customers") => customers.extend(lines.map(str::to_owned)),
            Some("notifications") => panic!("announced {:?}", notification.payload()),
            _ => {}
        }
    }
    // Waiters on a customer wait for its version, which only its own events move;
    // the orders and payments that move its counters would wake them for nothing.
    customers.sort();
    customers.dedup();
    let mut expected = vec![story.ada.to_string(), story.bob.to_string()];
    expected.sort();
    assert_eq!(customers, expected);

    streams.delete().await;
}

#[tokio::test]
async fn cancelling_a_confirmed_order_lowers_lifetime_spend_and_frees_its_credit() {
    let (ada, order) = (Uuid::now_v7(), Uuid::now_v7());
    let mut history = History::default();
    history.customer(ada, registered(ada, "Ada", 10_000));
    history.order(order, placed(ada, order, &[("MUG-1", 3)]));
    confirm(&mut history, ada, order, &[("MUG-1", 3, 1000)]);
    let (db, mut streams, worker) = applied(&history.envelopes).await;
    let confirmed = (
        true,
        Some("Ada".into()),
        Some(10_000),
        Some(7_000),
        true,
        1,
        3000,
        1,
    );
    assert_eq!(customer(&db.pool, ada).await, Some(confirmed));

    let before = history.envelopes.len();
    let cancel = OrderEvent::OrderCancelled {
        reason: None,
        cancelled_from: OrderStatus::Confirmed,
    };
    history.order(order, cancel);
    history.payment(order, PaymentEvent::PaymentVoided { amount_cents: 3000 });
    streams.publish(&history.envelopes[before..]).await;
    streams.wait_until_applied().await;

    let cancelled = (
        true,
        Some("Ada".into()),
        Some(10_000),
        Some(10_000),
        true,
        1,
        0,
        1,
    );
    assert_eq!(customer(&db.pool, ada).await, Some(cancelled));
    worker.stop().await;
    streams.delete().await;
}

#[tokio::test]
async fn a_customer_registered_after_its_orders_and_payments_ends_as_if_in_order() {
    let story = story();
    let in_order = applied(&story.history.envelopes).await;

    let late = TestDb::new(&[]).await.unwrap();
    let mut streams = Streams::new().await;
    let worker = Worker::start(&late, &streams).await;
    streams.publish(&story.history.of("orders")).await;
    streams.publish(&story.history.of("payments")).await;
    streams.wait_until_applied().await;
    // Counted already, but not a customer until registered.
    let unregistered = (false, None, None, None, false, 6, 3450, 0);
    assert_eq!(customer(&late.pool, story.ada).await, Some(unregistered));
    streams.publish(&story.history.of("customers")).await;
    streams.wait_until_applied().await;

    for table in ["customers", "customer_links"] {
        let expected = snapshot(&in_order.0.pool, table).await;
        assert_eq!(snapshot(&late.pool, table).await, expected, "{table}");
    }
    worker.stop().await;
    streams.delete().await;
    let (_db, streams, worker) = in_order;
    worker.stop().await;
    streams.delete().await;
}

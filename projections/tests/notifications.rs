//! The notifications read model against real PostgreSQL and NATS, and what
//! redelivering every stream does to all the read models: nothing.

mod support;

use chrono::{DateTime, Utc};
use projections::notifications::{self as read_model, FROM_CUSTOMERS, FROM_ORDERS};
use support::{applied, assert_handed_over_only, snapshots, story, Worker};
use uuid::Uuid;

type NotificationRow = (String, Option<Uuid>, String, DateTime<Utc>);

async fn notifications(pool: &sqlx::PgPool, customer_id: Uuid) -> Vec<NotificationRow> {
    sqlx::query_as(
        "SELECT kind, order_id, message, created_at FROM notifications
          WHERE customer_id = $1 ORDER BY created_at, id",
    )
    .bind(customer_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn customers_are_welcomed_and_told_each_outcome_of_their_orders() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;
    let time_of = |id: Uuid, event_type: &str| {
        let event = story
            .history
            .envelopes
            .iter()
            .find(|e| e.aggregate_id == id.to_string() && e.event_type == event_type);
        event.unwrap().recorded_at
    };

    let ada = notifications(&db.pool, story.ada).await;
    let kinds: Vec<(&str, Option<Uuid>)> = ada.iter().map(|n| (n.0.as_str(), n.1)).collect();
    let expected = [
        ("WELCOME", None),
        ("ORDER_CONFIRMED", Some(story.shipped)),
        ("ORDER_SHIPPED", Some(story.shipped)),
        ("ORDER_REJECTED", Some(story.rejected)),
        ("ORDER_CONFIRMED", Some(story.cancelled)),
        ("ORDER_CANCELLED", Some(story.cancelled)),
        ("ORDER_REJECTED", Some(story.declined)),
        ("ORDER_CONFIRMED", Some(story.confirmed)),
    ];
    assert_eq!(kinds, expected);
    assert_eq!(ada[0].2, "Welcome to Shop, Ada!");
    assert_eq!(ada[0].3, time_of(story.ada, "CustomerRegistered"));
    let rejected = format!("Your order {} was rejected: OUT_OF_STOCK", story.rejected);
    assert_eq!(ada[3].2, rejected);
    assert_eq!(ada[3].3, time_of(story.rejected, "OrderRejected"));
    let confirmed = format!(
        "Your order {} was confirmed; its total is 24.50.",
        story.shipped
    );
    assert_eq!(ada[1].2, confirmed);
    let cancelled = format!(
        "Your order {} was cancelled: changed my mind",
        story.cancelled
    );
    assert_eq!(ada[5].2, cancelled);

    let bob = notifications(&db.pool, story.bob).await;
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].0, "WELCOME");
    worker.stop().await;
    streams.delete().await;
}

#[tokio::test]
async fn only_the_events_that_send_a_notification_or_name_a_customer_are_handed_over() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;
    let envelopes = &story.history.envelopes;

    let orders = ("Order", read_model::ORDER_EVENTS);
    assert_handed_over_only(&db.pool, FROM_ORDERS, envelopes, orders).await;
    let customers = ("Customer", read_model::CUSTOMER_EVENTS);
    assert_handed_over_only(&db.pool, FROM_CUSTOMERS, envelopes, customers).await;

    worker.stop().await;
    streams.delete().await;
}

#[tokio::test]
async fn redelivering_every_stream_changes_no_read_model() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;
    let before = snapshots(&db.pool).await;
    worker.stop().await;

    // New consumers start every stream from its first message. Without their
    // offsets the notification consumers apply every event again, so only the
    // source event's id stands between a redelivery and a second message.
    streams.forget_consumers().await;
    sqlx::query("DELETE FROM consumer_offsets WHERE consumer LIKE 'notifications-%'")
        .execute(&db.pool)
        .await
        .unwrap();
    let worker = Worker::start(&db, &streams).await;
    streams.wait_until_applied().await;
    worker.stop().await;

    assert_eq!(snapshots(&db.pool).await, before);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 9, "a welcome each, and Ada's seven order outcomes");
    streams.delete().await;
}

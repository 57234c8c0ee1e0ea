//! The orders read model against real PostgreSQL and NATS: each test has its own
//! database and its own streams.

mod support;

use domain::orders::OrderEvent;
use projections::replay::Replay;
use sqlx::PgPool;
use support::{applied, placed, story, History};
use uuid::Uuid;

type OrderRow = (String, Option<i64>, Option<String>, i64);
type LineRow = (String, i64, Option<i64>);

async fn order(pool: &PgPool, id: Uuid) -> OrderRow {
    sqlx::query_as("SELECT status, total_cents, reason, version FROM orders WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn lines(pool: &PgPool, id: Uuid) -> Vec<LineRow> {
    sqlx::query_as(
        "SELECT sku, quantity, unit_price_cents FROM order_lines
          WHERE order_id = $1 ORDER BY line_number",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn each_order_ends_with_its_status_total_reason_and_priced_lines() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;
    let pool = &db.pool;

    let shipped = ("SHIPPED".into(), Some(2450), None, 6);
    assert_eq!(order(pool, story.shipped).await, shipped);
    let mug = ("MUG-1".to_owned(), 2, Some(1000));
    let tea = ("TEA-7".to_owned(), 1, Some(450));
    assert_eq!(lines(pool, story.shipped).await, [mug, tea]);

    let out_of_stock = ("REJECTED".into(), None, Some("OUT_OF_STOCK".into()), 2);
    assert_eq!(order(pool, story.rejected).await, out_of_stock);
    assert_eq!(
        lines(pool, story.rejected).await,
        [("TEA-7".into(), 50, None)]
    );

    let declined = (
        "REJECTED".into(),
        Some(200_000),
        Some("INSUFFICIENT_CREDIT".into()),
        4,
    );
    assert_eq!(order(pool, story.declined).await, declined);
    let cancelled = ("CANCELLED".into(), Some(3000), None, 5);
    assert_eq!(order(pool, story.cancelled).await, cancelled);
    let confirmed = ("CONFIRMED".into(), Some(1000), None, 4);
    assert_eq!(order(pool, story.confirmed).await, confirmed);

    let pending = ("PENDING".into(), None, None, 1);
    assert_eq!(order(pool, story.pending).await, pending);
    assert_eq!(
        lines(pool, story.pending).await,
        [("TEA-7".into(), 2, None)]
    );

    worker.stop().await;
    streams.delete().await;
}

#[tokio::test]
async fn an_order_keeps_its_placing_time_and_the_time_of_its_last_event() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;
    let events = story.history.of("orders");
    let of_order = |id: Uuid| {
        events
            .iter()
            .filter(move |e| e.aggregate_id == id.to_string())
    };

    let times: (
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        Uuid,
    ) = sqlx::query_as("SELECT placed_at, updated_at, customer_id FROM orders WHERE id = $1")
        .bind(story.shipped)
        .fetch_one(&db.pool)
        .await
        .unwrap();

    let placed = of_order(story.shipped).next().unwrap().recorded_at;
    let last = of_order(story.shipped).next_back().unwrap().recorded_at;
    assert!(placed < last);
    assert_eq!(times, (placed, last, story.ada));
    worker.stop().await;
    streams.delete().await;
}

/// The orders fold writes whole batches and counts the rows it changed: a batch
/// that prices a line its order does not have, or moves an order the read model
/// never saw, still fails, naming what is missing, rather than let the read model
/// drift from the stream.
#[tokio::test]
async fn a_batch_fails_on_a_line_or_an_order_the_read_model_does_not_have() {
    let (customer, order) = (Uuid::now_v7(), Uuid::now_v7());
    let mut history = History::default();
    history.order(order, placed(customer, order, &[("MUG-1", 2)]));
    let replay = Replay::new("orders").await.unwrap();
    assert_eq!(replay.apply(&history.envelopes).await.unwrap(), 1);

    let reserved = OrderEvent::OrderLineReserved {
        sku: "TEA-7".into(),
        quantity: 1,
        unit_price_cents: 450,
    };
    history.order(order, reserved);
    let error = format!("{:#}", replay.apply(&history.envelopes).await.unwrap_err());
    assert!(
        error.contains(&format!("order {order} has no line TEA-7")),
        "{error}"
    );

    let stranger = Uuid::now_v7();
    let mut elsewhere = History::default();
    elsewhere.order(stranger, OrderEvent::OrderConfirmed { total_cents: 900 });
    let error = format!(
        "{:#}",
        replay.apply(&elsewhere.envelopes).await.unwrap_err()
    );
    assert!(
        error.contains(&format!("order {stranger} is not in the read model")),
        "{error}"
    );
}

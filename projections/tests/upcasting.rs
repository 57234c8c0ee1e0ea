//! `OrderCancelled` reaches the read models at version 1.0 (`was`) from events stored
//! before the rename, and at version 2.0 (`cancelled_from`) from new ones. Both must
//! build the same rows.

mod support;

use serde_json::json;
use support::{applied, confirm, placed, registered, History};
use uuid::Uuid;

/// Ada with two confirmed orders, both cancelled from CONFIRMED with the same words:
/// the first by an event stored at version 1.0, the second at version 2.0.
fn cancellations_of_both_versions() -> (History, Uuid, [Uuid; 2]) {
    let mut history = History::default();
    let ada = Uuid::now_v7();
    let orders = [Uuid::now_v7(), Uuid::now_v7()];
    history.customer(ada, registered(ada, "Ada", 100_000));
    for order_id in orders {
        history.order(order_id, placed(ada, order_id, &[("MUG-1", 3)]));
        confirm(&mut history, ada, order_id, &[("MUG-1", 3, 1000)]);
    }
    for (order_id, version) in orders.into_iter().zip(["1.0", "2.0"]) {
        let cancel = domain::orders::OrderEvent::OrderCancelled {
            reason: Some("changed my mind".into()),
            cancelled_from: domain::orders::OrderStatus::Confirmed,
        };
        history.order(order_id, cancel);
        if version == "1.0" {
            let stored = history.envelopes.last_mut().expect("the cancellation");
            stored.event_version = version.into();
            stored.payload = json!({"reason": "changed my mind", "was": "CONFIRMED"});
        }
    }
    (history, ada, orders)
}

#[tokio::test]
async fn orders_cancelled_at_either_version_are_cancelled_in_the_orders_read_model() {
    let (history, _, orders) = cancellations_of_both_versions();
    let (db, streams, worker) = applied(&history.envelopes).await;
    for order_id in orders {
        let (status, total_cents, version): (String, Option<i64>, i64) =
            sqlx::query_as("SELECT status, total_cents, version FROM orders WHERE id = $1")
                .bind(order_id)
                .fetch_one(&db.pool)
                .await
                .expect("the order row");
        assert_eq!((status.as_str(), total_cents), ("CANCELLED", Some(3000)));
        assert_eq!(version, 5, "every event of order {order_id} was applied");
    }
    worker.stop().await;
    streams.delete().await;
}

#[tokio::test]
async fn the_customers_words_reach_the_notification_from_either_version() {
    let (history, ada, orders) = cancellations_of_both_versions();
    let (db, streams, worker) = applied(&history.envelopes).await;
    let messages: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT order_id, message FROM notifications
          WHERE customer_id = $1 AND kind = 'ORDER_CANCELLED' ORDER BY created_at",
    )
    .bind(ada)
    .fetch_all(&db.pool)
    .await
    .expect("notifications");
    let expected: Vec<(Uuid, String)> = orders
        .iter()
        .map(|id| {
            (
                *id,
                format!("Your order {id} was cancelled: changed my mind"),
            )
        })
        .collect();
    assert_eq!(messages, expected);
    worker.stop().await;
    streams.delete().await;
}

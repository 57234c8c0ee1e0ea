//! The payments read model against real PostgreSQL and NATS.

mod support;

use support::{applied, story};
use uuid::Uuid;

type PaymentRow = (Uuid, i64, String, Option<String>, i64);

#[tokio::test]
async fn each_payment_ends_with_its_amount_status_and_reason() {
    let story = story();
    let (db, streams, worker) = applied(&story.history.envelopes).await;

    let payment = |order_id: Uuid| {
        sqlx::query_as::<_, PaymentRow>(
            "SELECT customer_id, amount_cents, status, reason, version
               FROM payments WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(&db.pool)
    };
    let ada = story.ada;
    let captured = (ada, 2450, "CAPTURED".into(), None, 2);
    assert_eq!(payment(story.shipped).await.unwrap(), Some(captured));
    let voided = (ada, 3000, "VOIDED".into(), None, 2);
    assert_eq!(payment(story.cancelled).await.unwrap(), Some(voided));
    let reason = Some("INSUFFICIENT_CREDIT".into());
    let declined = (ada, 200_000, "DECLINED".into(), reason, 1);
    assert_eq!(payment(story.declined).await.unwrap(), Some(declined));
    let authorized = (ada, 1000, "AUTHORIZED".into(), None, 1);
    assert_eq!(payment(story.confirmed).await.unwrap(), Some(authorized));
    assert_eq!(payment(story.rejected).await.unwrap(), None);

    worker.stop().await;
    streams.delete().await;
}

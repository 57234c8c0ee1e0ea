//! The payments route of the orders view against a real read-model database.

mod support;

use std::time::Duration;

use http::StatusCode;
use platform::testing::TestDb;
use serde_json::json;
use support::{get, order_id, read_model};
use uuid::Uuid;

async fn insert_payment(
    db: &TestDb,
    order_id: Uuid,
    status: &str,
    reason: Option<&str>,
    version: i64,
) {
    sqlx::query(
        "INSERT INTO payments (order_id, customer_id, amount_cents, status, reason, version, updated_at)
         VALUES ($1, $2, 2450, $3, $4, $5, now())",
    )
    .bind(order_id)
    .bind(Uuid::from_u128(9))
    .bind(status)
    .bind(reason)
    .bind(version)
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_payment_is_served_by_its_order_id() {
    let db = read_model().await;
    insert_payment(&db, order_id(1), "DECLINED", Some("INSUFFICIENT_CREDIT"), 1).await;

    let (status, _, body) = get(&db, &format!("/api/payments/{}", order_id(1))).await;

    assert_eq!(status, StatusCode::OK);
    let expected = json!({"order_id": order_id(1), "customer_id": Uuid::from_u128(9),
        "amount_cents": 2450, "status": "DECLINED", "reason": "INSUFFICIENT_CREDIT",
        "version": 1});
    assert_eq!(body, expected);
}

#[tokio::test]
async fn min_version_waits_for_the_payment_to_catch_up() {
    let db = read_model().await;
    insert_payment(&db, order_id(1), "AUTHORIZED", None, 1).await;
    let pool = db.pool.clone();
    let projector = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("UPDATE payments SET status = 'CAPTURED', version = 2")
            .execute(&pool)
            .await
            .unwrap();
    });

    let (status, _, body) = get(&db, &format!("/api/payments/{}?min_version=2", order_id(1))).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["version"], &body["status"]),
        (&json!(2), &json!("CAPTURED"))
    );
    projector.await.unwrap();
}

#[test]
fn min_version_waits_on_the_read_models_their_projections_announce() {
    use platform::consumer::Handler;

    assert_eq!(
        orders_view::orders::READ_MODEL,
        projections::orders::OrdersProjection.name()
    );
    assert_eq!(
        orders_view::payments::READ_MODEL,
        projections::payments::PaymentsProjection.name()
    );
}

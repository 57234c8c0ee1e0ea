//! The customers view's HTTP API against a real read-model database, filled by SQL.

use std::time::{Duration, Instant};

use axum::body::Body;
use customers_view::{router, AppState};
use http::{header, Request, StatusCode};
use platform::db::READ_MODEL_MIGRATIONS;
use platform::testing::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

async fn read_model() -> TestDb {
    TestDb::new(&[&READ_MODEL_MIGRATIONS, &projections::MIGRATIONS])
        .await
        .unwrap()
}

/// A customer named Ada: limit 150,000 with 3,450 committed, six orders and 3,450 spent, at version 2.
async fn register_customer(db: &TestDb) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO customers (id, registered, name, email, credit_limit_cents, active,
                                version, committed_cents, orders_count, lifetime_spend_cents)
         VALUES ($1, true, 'Ada', 'ada@example.com', 150000, true, 2, 3450, 6, 3450)",
    )
    .bind(id)
    .execute(&db.pool)
    .await
    .unwrap();
    id
}

async fn notify(db: &TestDb, customer_id: Uuid, kind: &str, order_id: Option<Uuid>, at: &str) {
    sqlx::query(
        "INSERT INTO notifications (id, customer_id, kind, order_id, message, created_at, source_event_id)
         VALUES ($1, $2, $3, $4, $3 || ' message', $5::timestamptz, $1::text)",
    )
    .bind(Uuid::now_v7())
    .bind(customer_id)
    .bind(kind)
    .bind(order_id)
    .bind(at)
    .execute(&db.pool)
    .await
    .unwrap();
}

/// Sends a GET through the router, without a server; returns status, content type and body.
async fn get(db: &TestDb, uri: &str) -> (StatusCode, String, Value) {
    let app = router(AppState::new(db.pool.clone()));
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), app.oneshot(request))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, content_type, body)
}

#[tokio::test]
async fn a_customer_is_served_with_credit_available_after_committed_payments() {
    let db = read_model().await;
    let ada = register_customer(&db).await;

    let (status, _, body) = get(&db, &format!("/api/customers/{ada}")).await;

    assert_eq!(status, StatusCode::OK);
    let expected = json!({"id": ada, "name": "Ada", "email": "ada@example.com",
        "credit_limit_cents": 150_000, "available_credit_cents": 146_550, "active": true,
        "orders_count": 6, "lifetime_spend_cents": 3450, "version": 2});
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_customer_known_only_from_orders_and_payments_is_not_served_yet() {
    let db = read_model().await;
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO customers (id, orders_count, committed_cents) VALUES ($1, 1, 100)")
        .bind(id)
        .execute(&db.pool)
        .await
        .unwrap();
    notify(
        &db,
        id,
        "ORDER_CONFIRMED",
        Some(Uuid::now_v7()),
        "2027-01-15T08:00:00Z",
    )
    .await;

    for uri in [
        format!("/api/customers/{id}"),
        format!("/api/customers/{id}/notifications"),
    ] {
        let (status, content_type, _) = get(&db, &uri).await;

        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn an_unknown_or_malformed_customer_id_is_a_404_problem() {
    let db = read_model().await;
    let unknown = Uuid::now_v7();
    for uri in [
        format!("/api/customers/{unknown}"),
        format!("/api/customers/{unknown}/notifications"),
        "/api/customers/ada".to_owned(),
        "/api/customers/ada/notifications".to_owned(),
    ] {
        let (status, content_type, body) = get(&db, &uri).await;

        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["status"], 404);
    }
}

#[tokio::test]
async fn min_version_waits_for_the_customer_to_catch_up() {
    let db = read_model().await;
    let ada = register_customer(&db).await;
    let pool = db.pool.clone();
    let projector = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("UPDATE customers SET active = false, version = 3 WHERE id = $1")
            .bind(ada)
            .execute(&pool)
            .await
            .unwrap();
    });

    let started = Instant::now();
    let (status, _, body) = get(&db, &format!("/api/customers/{ada}?min_version=3")).await;
    let waited = started.elapsed();

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["version"], &body["active"]),
        (&json!(3), &json!(false))
    );
    assert!(
        waited >= Duration::from_millis(150),
        "answered after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1_500),
        "answered after {waited:?}"
    );
    projector.await.unwrap();
}

#[tokio::test]
async fn a_min_version_that_never_arrives_answers_with_the_current_customer_after_2_s() {
    let db = read_model().await;
    let ada = register_customer(&db).await;

    let started = Instant::now();
    let (status, _, body) = get(&db, &format!("/api/customers/{ada}?min_version=9")).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "did not wait 2 s"
    );
}

#[tokio::test]
async fn notifications_are_listed_newest_first() {
    let db = read_model().await;
    let ada = register_customer(&db).await;
    let bob = register_customer(&db).await;
    let order = Uuid::now_v7();
    notify(
        &db,
        ada,
        "ORDER_CONFIRMED",
        Some(order),
        "2027-01-15T08:00:05Z",
    )
    .await;
    notify(&db, ada, "WELCOME", None, "2027-01-15T08:00:00Z").await;
    notify(
        &db,
        ada,
        "ORDER_SHIPPED",
        Some(order),
        "2027-01-15T09:30:00Z",
    )
    .await;
    notify(&db, bob, "WELCOME", None, "2027-01-15T08:00:01Z").await;

    let (status, _, body) = get(&db, &format!("/api/customers/{ada}/notifications")).await;

    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    let seen: Vec<(&str, &Value, &str)> = items
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap(),
                &n["order_id"],
                n["created_at"].as_str().unwrap(),
            )
        })
        .collect();
    let order = json!(order);
    let expected = [
        ("ORDER_SHIPPED", &order, "2027-01-15T09:30:00Z"),
        ("ORDER_CONFIRMED", &order, "2027-01-15T08:00:05Z"),
        ("WELCOME", &Value::Null, "2027-01-15T08:00:00Z"),
    ];
    assert_eq!(seen, expected);
    assert_eq!(items[0]["message"], "ORDER_SHIPPED message");
    assert!(Uuid::parse_str(items[0]["id"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn a_customer_without_notifications_has_an_empty_list() {
    let db = read_model().await;
    let ada = register_customer(&db).await;

    let (status, _, body) = get(&db, &format!("/api/customers/{ada}/notifications")).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"items": []}));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_health_answers() {
    let db = read_model().await;

    let (status, _, body) = get(&db, "/openapi.json").await;

    assert_eq!(status, StatusCode::OK);
    for path in ["/api/customers/{id}", "/api/customers/{id}/notifications"] {
        assert!(body["paths"][path]["get"].is_object(), "{path}: {body}");
    }
    for schema in ["Customer", "Notification", "NotificationList"] {
        assert!(
            body["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
    assert_eq!(get(&db, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&db, "/readyz").await.0, StatusCode::OK);
}

#[test]
fn min_version_waits_on_the_read_model_its_projection_announces() {
    use platform::consumer::Handler;

    assert_eq!(
        customers_view::customers::READ_MODEL,
        projections::customers::CustomersProjection.name()
    );
}

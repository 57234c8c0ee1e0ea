//! A command service's events of one request: `GET /api/admin/events?correlation_id=X`
//! on a real event store.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::testing::TestDb;
use platform::trace::{events_by_correlation, Trace};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Appends an event of order `order_id` as postgres-es writes it.
async fn append(db: &TestDb, order_id: &str, sequence: i64, correlation_id: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Order', $1, $2, 'OrderPlaced', '1.0', $3, $4)",
    )
    .bind(order_id)
    .bind(sequence)
    .bind(json!({"OrderPlaced": {"order_id": order_id}}))
    .bind(json!({"correlation_id": correlation_id, "causation_id": correlation_id}))
    .execute(&db.pool)
    .await
    .expect("append an event");
}

async fn get(db: &TestDb, uri: &str) -> (StatusCode, Value) {
    let response = platform::trace::router(db.pool.clone(), "orders")
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("an answer");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_the_events_of_the_request_are_listed_as_envelopes() {
    let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
        .await
        .expect("database");
    append(&db, "o-1", 1, "req-1").await;
    append(&db, "o-2", 1, "req-2").await;
    append(&db, "o-1", 2, "req-1").await;

    let (status, body) = get(&db, "/api/admin/events?correlation_id=req-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let trace: Trace = serde_json::from_value(body).expect("a Trace");
    assert_eq!(trace.correlation_id, "req-1");
    let ids: Vec<&str> = trace.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["orders:Order:o-1:1", "orders:Order:o-1:2"]);
    assert_eq!(
        trace.events[0].payload,
        json!({"order_id": "o-1"}),
        "payloads are untagged, as in every Envelope"
    );

    let none = events_by_correlation(&db.pool, "orders", "req-3")
        .await
        .expect("query");
    assert!(none.is_empty());
}

#[tokio::test]
async fn an_unknown_request_is_an_empty_list_and_a_missing_id_is_bad_input() {
    let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
        .await
        .expect("database");
    let (status, body) = get(&db, "/api/admin/events?correlation_id=nobody").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!([]));

    let (status, body) = get(&db, "/api/admin/events").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = get(&db, "/api/admin/events?correlation_id=%20").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "correlation_id");
}

#[tokio::test]
async fn the_correlation_index_serves_the_lookup() {
    let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
        .await
        .expect("database");
    // Planner choices depend on statistics; without sequential scans the index is
    // the only way, and it must exist for the plan to name it.
    let mut connection = db.pool.acquire().await.expect("connection");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *connection)
        .await
        .expect("set");
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT * FROM events WHERE metadata ->> 'correlation_id' = 'req-1'",
    )
    .fetch_all(&mut *connection)
    .await
    .expect("explain");
    assert!(
        plan.iter()
            .any(|line| line.contains("events_by_correlation")),
        "{plan:#?}"
    );
}

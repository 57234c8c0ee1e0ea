//! What the API tests share: a migrated read-model database and requests sent
//! through the router without a server.

#![allow(dead_code)]

use std::time::Duration;

use axum::body::Body;
use http::{header, Request, StatusCode};
use orders_view::{router, AppState};
use platform::db::READ_MODEL_MIGRATIONS;
use platform::testing::TestDb;
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

pub async fn read_model() -> TestDb {
    TestDb::new(&[&READ_MODEL_MIGRATIONS, &projections::MIGRATIONS])
        .await
        .unwrap()
}

/// The `n`th order id: UUIDv7s whose time part grows with `n`.
pub fn order_id(n: u64) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(1_800_000_000_000 + n, &[7; 10]).into_uuid()
}

/// Sends a GET through the router, without a server; returns status, content type and body.
pub async fn get(db: &TestDb, uri: &str) -> (StatusCode, String, Value) {
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

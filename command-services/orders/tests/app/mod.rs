//! The orders router over a fresh event store, driven with `oneshot` and no server.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use orders::{router, AppState};
use platform::db::{EVENT_STORE_MIGRATIONS, READ_MODEL_MIGRATIONS};
use platform::event_store::AggregateStore;
use platform::testing::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The customer of every order in these tests.
pub const CUSTOMER: &str = "0190a0f6-5b1c-7c3e-8f00-000000000001";

/// The router over its own database.
pub struct TestApp {
    db: TestDb,
    router: Router,
}

/// Status, headers and JSON body (null when the body is not JSON).
pub type Answer = (StatusCode, http::HeaderMap, Value);

impl TestApp {
    /// A router over a new, migrated database.
    pub async fn new() -> Self {
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS, &READ_MODEL_MIGRATIONS])
            .await
            .expect("test database");
        let state = AppState {
            orders: Arc::new(AggregateStore::new("orders", db.pool.clone(), ())),
        };
        Self {
            router: router(state),
            db,
        }
    }

    /// Sends one request through the router.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// POSTs a JSON body.
    pub async fn post(&self, path: &str, body: &str) -> Answer {
        self.send(json_request("POST", path, body)).await
    }

    /// How many events the store holds.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }

    /// Places a one-line order and returns its id.
    pub async fn place_mug_order(&self) -> String {
        let (status, _, body) = self.post("/api/orders", &order_body(&[("MUG-1", 2)])).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }
}

/// A `POST /api/orders` body for `lines`.
pub fn order_body(lines: &[(&str, i64)]) -> String {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    json!({"customer_id": CUSTOMER, "lines": lines}).to_string()
}

/// A request with a JSON content type.
pub fn json_request(method: &str, path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

/// Checks the status and that the body is problem+json.
pub fn assert_problem((status, headers, body): &Answer, expected: StatusCode) {
    assert_eq!(*status, expected, "{body}");
    assert_eq!(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(body["status"], json!(expected.as_u16()));
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
}

/// The `field` of every validation error, in order.
pub fn error_fields(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect()
}

//! The inventory API against a real event store, through `router()` with no server.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use inventory::{router, AppState};
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::AggregateStore;
use platform::testing::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;

struct TestApp {
    db: TestDb,
    router: Router,
}

impl TestApp {
    async fn new() -> Self {
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
            .await
            .expect("test database");
        let state = AppState {
            products: Arc::new(AggregateStore::new("inventory", db.pool.clone(), ())),
        };
        Self {
            router: router(state),
            db,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
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

    async fn post(&self, path: &str, body: &str) -> (StatusCode, http::HeaderMap, Value) {
        self.send(json_request("POST", path, body)).await
    }

    async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }

    async fn add_red_shirt(&self) {
        let (status, _, _) = self
            .post(
                "/api/products",
                r#"{"sku":"TSHIRT-RED","name":"Red T-shirt","price_cents":1999,"initial_stock":10}"#,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
}

fn json_request(method: &str, path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

fn assert_problem(headers: &http::HeaderMap, body: &Value, status: StatusCode) {
    assert_eq!(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(body["status"], json!(status.as_u16()));
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
}

#[tokio::test]
async fn adding_a_product_answers_201_with_version_1_and_stores_one_event() {
    let app = TestApp::new().await;
    let (status, headers, body) = app
        .post(
            "/api/products",
            r#"{"sku":"MUG-1","name":"Mug","price_cents":500}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, json!({"sku": "MUG-1", "version": 1}));
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn adding_an_existing_sku_is_409_and_writes_nothing() {
    let app = TestApp::new().await;
    app.add_red_shirt().await;
    let (status, headers, body) = app
        .post(
            "/api/products",
            r#"{"sku":"TSHIRT-RED","name":"Again","price_cents":1}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&headers, &body, status);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn bad_input_gets_problem_json_and_writes_nothing() {
    let app = TestApp::new().await;
    app.add_red_shirt().await;
    let cases = [
        ("/api/products", "{not json", StatusCode::BAD_REQUEST),
        (
            "/api/products",
            r#"{"sku":"A","name":"x","price_cents":"ten"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/products",
            r#"{"sku":"lower-case","name":"x","price_cents":10}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/products",
            r#"{"sku":"OK","name":"  ","price_cents":0,"initial_stock":-1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/products/TSHIRT-RED/restock",
            r#"{"quantity":0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/products/TSHIRT-RED/restock",
            r#"{"quantity":1000001}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/products/TSHIRT-RED/restock",
            r#"{"quantity":1.5}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/products/NOPE/restock",
            r#"{"quantity":1}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/products/no%20such/restock",
            r#"{"quantity":1}"#,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, expected) in cases {
        let (status, headers, problem) = app.post(path, body).await;
        assert_eq!(status, expected, "{path} {body}");
        assert_problem(&headers, &problem, expected);
    }
    assert_eq!(
        app.event_count().await,
        1,
        "no rejected request wrote an event"
    );
}

#[tokio::test]
async fn validation_errors_name_every_wrong_field() {
    let app = TestApp::new().await;
    let (_, _, body) = app
        .post(
            "/api/products",
            r#"{"sku":"bad sku","name":"","price_cents":-5,"initial_stock":2000000}"#,
        )
        .await;
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    fields.sort();
    assert_eq!(fields, ["initial_stock", "name", "price_cents", "sku"]);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = TestApp::new().await;
    let name = "x".repeat(100 * 1024);
    let body = format!(r#"{{"sku":"BIG","name":"{name}","price_cents":1}}"#);
    let (status, headers, problem) = app.post("/api/products", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_problem(&headers, &problem, status);
}

#[tokio::test]
async fn if_match_with_a_stale_version_is_412_and_the_right_one_succeeds() {
    let app = TestApp::new().await;
    app.add_red_shirt().await;
    let mut stale = json_request(
        "PUT",
        "/api/products/TSHIRT-RED/price",
        r#"{"price_cents":2500}"#,
    );
    stale
        .headers_mut()
        .insert(header::IF_MATCH, "\"7\"".parse().expect("header"));
    let (status, headers, body) = app.send(stale).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_problem(&headers, &body, status);

    let mut current = json_request(
        "PUT",
        "/api/products/TSHIRT-RED/price",
        r#"{"price_cents":2500}"#,
    );
    current
        .headers_mut()
        .insert(header::IF_MATCH, "\"1\"".parse().expect("header"));
    let (status, _, body) = app.send(current).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"sku": "TSHIRT-RED", "version": 2}));
}

#[tokio::test]
async fn the_event_stream_carries_the_request_id_as_correlation_id() {
    let app = TestApp::new().await;
    app.add_red_shirt().await;
    let mut restock = json_request(
        "POST",
        "/api/products/TSHIRT-RED/restock",
        r#"{"quantity":5}"#,
    );
    restock
        .headers_mut()
        .insert("x-request-id", "req-42".parse().expect("header"));
    let (status, headers, body) = app.send(restock).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], json!(2));
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("req-42")
    );

    let get = Request::get("/api/products/TSHIRT-RED/events?from_sequence=2")
        .body(Body::empty())
        .expect("request");
    let (status, _, stream) = app.send(get).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stream["aggregate_type"], "Product");
    let events = stream["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["event_id"], "inventory:Product:TSHIRT-RED:2");
    assert_eq!(event["event_type"], "Restocked");
    assert_eq!(event["payload"], json!({"quantity": 5}));
    assert_eq!(event["metadata"]["correlation_id"], "req-42");
}

#[tokio::test]
async fn the_event_stream_of_an_unknown_product_is_404() {
    let app = TestApp::new().await;
    let get = Request::get("/api/products/GHOST/events")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = app.send(get).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&headers, &body, status);
}

#[tokio::test]
async fn concurrent_restocks_all_land_without_conflicts() {
    let app = TestApp::new().await;
    app.add_red_shirt().await;
    let restocks =
        (0..20).map(|_| app.post("/api/products/TSHIRT-RED/restock", r#"{"quantity":1}"#));
    let results = futures::future::join_all(restocks).await;
    assert!(results
        .iter()
        .all(|(status, _, _)| *status == StatusCode::OK));
    assert_eq!(app.event_count().await, 21);
}

#[tokio::test]
async fn the_same_idempotency_key_sent_three_times_at_once_adds_one_product() {
    let app = TestApp::new().await;
    let body = r#"{"sku":"LAMP","name":"Lamp","price_cents":4500}"#;
    let attempt = || {
        let mut request = json_request("POST", "/api/products", body);
        request
            .headers_mut()
            .insert("idempotency-key", "add-lamp-1".parse().expect("header"));
        app.send(request)
    };
    let answers = futures::future::join_all([attempt(), attempt(), attempt()]).await;
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        assert_eq!(*body, json!({"sku": "LAMP", "version": 1}));
    }
    let replayed = answers
        .iter()
        .filter(|(_, headers, _)| headers.contains_key("idempotent-replayed"))
        .count();
    assert_eq!(replayed, 2, "two of the three answers are replays");
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_body_is_refused() {
    let app = TestApp::new().await;
    let send = |body: &'static str| {
        let mut request = json_request("POST", "/api/products", body);
        request
            .headers_mut()
            .insert("idempotency-key", "key-9".parse().expect("header"));
        app.send(request)
    };
    let (status, _, _) = send(r#"{"sku":"A1","name":"A","price_cents":1}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, body) = send(r#"{"sku":"B1","name":"B","price_cents":1}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&headers, &body, status);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn the_state_at_a_version_is_the_product_after_that_event() {
    let app = TestApp::new().await;
    app.add_red_shirt().await;
    for quantity in [5, 7] {
        let (status, _, _) = app
            .post(
                "/api/products/TSHIRT-RED/restock",
                &format!(r#"{{"quantity":{quantity}}}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    let (status, _, first) = app
        .send(get("/api/products/TSHIRT-RED/state?version=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["aggregate_type"], "Product");
    assert_eq!(first["aggregate_id"], "TSHIRT-RED");
    assert_eq!(first["version"], 1);
    assert_eq!(first["state"]["on_hand"], 10);

    let (status, _, current) = app.send(get("/api/products/TSHIRT-RED/state")).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(current["version"], 3);
    assert_eq!(current["state"]["on_hand"], 22);
}

#[tokio::test]
async fn the_state_of_an_unknown_product_is_404() {
    let app = TestApp::new().await;
    app.add_red_shirt().await;
    for path in [
        "/api/products/NOPE/state",
        "/api/products/TSHIRT-RED/state?version=9",
    ] {
        let (status, headers, body) = app.send(get(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_problem(&headers, &body, StatusCode::NOT_FOUND);
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

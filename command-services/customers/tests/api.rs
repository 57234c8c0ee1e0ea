//! The customers API against a real event store, through `router()` with no server.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use customers::{router, AppState};
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::AggregateStore;
use platform::testing::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const ADA: &str = r#"{"name":"Ada Lovelace","email":"Ada@Example.com","credit_limit_cents":50000}"#;

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
            customers: Arc::new(AggregateStore::new("customers", db.pool.clone(), ())),
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

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> (StatusCode, http::HeaderMap, Value) {
        self.send(json_request(method, path, body)).await
    }

    async fn get(&self, path: &str) -> (StatusCode, http::HeaderMap, Value) {
        let request = Request::get(path).body(Body::empty()).expect("request");
        self.send(request).await
    }

    async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }

    /// Registers Ada and returns her id.
    async fn register_ada(&self) -> String {
        let (status, _, body) = self.call("POST", "/api/customers", ADA).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_owned()
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
async fn registering_a_customer_answers_201_with_a_new_uuid_v7_and_version_1() {
    let app = TestApp::new().await;
    let (status, headers, body) = app.call("POST", "/api/customers", ADA).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["version"], json!(1));
    let id = Uuid::parse_str(body["id"].as_str().expect("id")).expect("a UUID");
    assert_eq!(id.get_version_num(), 7);
    assert!(headers.contains_key("x-request-id"));

    let (_, _, second) = app.call("POST", "/api/customers", ADA).await;
    assert_ne!(
        second["id"], body["id"],
        "every registration gets its own id"
    );
    assert_eq!(app.event_count().await, 2);

    let (_, _, stream) = app.get(&format!("/api/customers/{id}/events")).await;
    assert_eq!(stream["events"][0]["event_type"], "CustomerRegistered");
    assert_eq!(
        stream["events"][0]["payload"],
        json!({"customer_id": id.to_string(), "name": "Ada Lovelace",
               "email": "ada@example.com", "credit_limit_cents": 50000})
    );
}

#[tokio::test]
async fn changing_the_credit_limit_answers_the_next_version_and_the_same_limit_writes_nothing() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    let path = format!("/api/customers/{id}/credit-limit");
    let (status, _, body) = app.call("PUT", &path, r#"{"credit_limit_cents":0}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": id, "version": 2}));
    let (status, _, body) = app.call("PUT", &path, r#"{"credit_limit_cents":0}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": id, "version": 2}));
    assert_eq!(app.event_count().await, 2);
}

#[tokio::test]
async fn a_deactivated_customer_keeps_their_limit_and_deactivating_again_writes_nothing() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    let deactivate = format!("/api/customers/{id}/deactivate");
    let request = Request::post(&deactivate)
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": id, "version": 2}));
    let (status, _, body) = app.call("POST", &deactivate, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": id, "version": 2}));

    let path = format!("/api/customers/{id}/credit-limit");
    let (status, headers, body) = app.call("PUT", &path, r#"{"credit_limit_cents":10}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&headers, &body, status);
    assert_eq!(app.event_count().await, 2);
}

#[tokio::test]
async fn bad_input_gets_problem_json_and_writes_nothing() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    let limit = format!("/api/customers/{id}/credit-limit");
    let unknown = Uuid::now_v7();
    let cases = [
        (
            "POST",
            "/api/customers".to_owned(),
            "{not json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/customers".to_owned(),
            r#"{"name":"A","email":"a@b.co","credit_limit_cents":"ten"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/customers".to_owned(),
            r#"{"name":"A","email":"a@b.co","credit_limit_cents":1.5}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/customers".to_owned(),
            r#"{"name":"A","email":"a@b.co"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/customers".to_owned(),
            r#"{"name":"  ","email":"a@b.co","credit_limit_cents":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/customers".to_owned(),
            r#"{"name":"A","email":"not an email","credit_limit_cents":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/customers".to_owned(),
            r#"{"name":"A","email":"a@b.co","credit_limit_cents":-1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            limit.clone(),
            r#"{"credit_limit_cents":-5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            limit.clone(),
            r#"{"credit_limit_cents":"x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("PUT", limit, "{}", StatusCode::BAD_REQUEST),
        (
            "PUT",
            format!("/api/customers/{unknown}/credit-limit"),
            r#"{"credit_limit_cents":5}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "PUT",
            "/api/customers/not-a-uuid/credit-limit".to_owned(),
            r#"{"credit_limit_cents":5}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            format!("/api/customers/{unknown}/deactivate"),
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/api/customers/12345/deactivate".to_owned(),
            "",
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, body, expected) in cases {
        let (status, headers, problem) = app.call(method, &path, body).await;
        assert_eq!(status, expected, "{method} {path} {body}");
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
    let (status, headers, body) = app
        .call(
            "POST",
            "/api/customers",
            r#"{"name":"","email":"@","credit_limit_cents":-100}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&headers, &body, status);
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    fields.sort();
    assert_eq!(fields, ["credit_limit_cents", "email", "name"]);
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn if_match_with_a_stale_version_is_412_and_the_right_one_succeeds() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    let path = format!("/api/customers/{id}/credit-limit");
    let with_if_match = |version: &str| {
        let mut request = json_request("PUT", &path, r#"{"credit_limit_cents":900}"#);
        request
            .headers_mut()
            .insert(header::IF_MATCH, version.parse().expect("header"));
        request
    };
    let (status, headers, body) = app.send(with_if_match("\"4\"")).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_problem(&headers, &body, status);
    assert_eq!(app.event_count().await, 1);

    let (status, _, body) = app.send(with_if_match("\"1\"")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": id, "version": 2}));
}

#[tokio::test]
async fn the_event_stream_carries_the_request_id_as_correlation_id() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    let mut change = json_request(
        "PUT",
        &format!("/api/customers/{id}/credit-limit"),
        r#"{"credit_limit_cents":75000}"#,
    );
    change
        .headers_mut()
        .insert("x-request-id", "req-7".parse().expect("header"));
    let (status, headers, _) = app.send(change).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("req-7")
    );

    // An upper-case spelling of the id names the same customer.
    let upper = id.to_uppercase();
    let (status, _, stream) = app
        .get(&format!("/api/customers/{upper}/events?from_sequence=2"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stream["aggregate_type"], "Customer");
    assert_eq!(stream["aggregate_id"], json!(id));
    let events = stream["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["event_id"], format!("customers:Customer:{id}:2"));
    assert_eq!(event["event_type"], "CreditLimitChanged");
    assert_eq!(event["payload"], json!({"credit_limit_cents": 75000}));
    assert_eq!(event["metadata"]["correlation_id"], "req-7");
    assert_eq!(event["metadata"]["causation_id"], "req-7");
}

#[tokio::test]
async fn the_event_stream_of_an_unknown_or_malformed_id_is_404() {
    let app = TestApp::new().await;
    for path in [
        format!("/api/customers/{}/events", Uuid::now_v7()),
        "/api/customers/nobody/events".to_owned(),
    ] {
        let (status, headers, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_problem(&headers, &body, status);
    }
}

#[tokio::test]
async fn the_same_idempotency_key_sent_three_times_at_once_registers_one_customer() {
    let app = TestApp::new().await;
    let attempt = || {
        let mut request = json_request("POST", "/api/customers", ADA);
        request
            .headers_mut()
            .insert("idempotency-key", "register-ada-1".parse().expect("header"));
        app.send(request)
    };
    let answers = futures::future::join_all([attempt(), attempt(), attempt()]).await;
    let first = &answers[0].2;
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        assert_eq!(body, first, "every answer names the same customer");
    }
    assert_eq!(first["version"], json!(1));
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
        let mut request = json_request("POST", "/api/customers", body);
        request
            .headers_mut()
            .insert("idempotency-key", "key-9".parse().expect("header"));
        app.send(request)
    };
    let (status, _, _) = send(ADA).await;
    assert_eq!(status, StatusCode::CREATED);
    let other = r#"{"name":"Grace","email":"grace@example.com","credit_limit_cents":1}"#;
    let (status, headers, body) = send(other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&headers, &body, status);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn the_openapi_document_lists_every_customer_route() {
    let app = TestApp::new().await;
    let (status, _, document) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().expect("paths");
    let mut routes: Vec<String> = paths
        .iter()
        .flat_map(|(path, operations)| {
            let methods = operations.as_object().expect("operations").keys();
            methods.map(move |method| format!("{method} {path}"))
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "get /api/customers/{id}/events",
            "get /api/customers/{id}/state",
            "post /api/customers",
            "post /api/customers/{id}/deactivate",
            "put /api/customers/{id}/credit-limit",
        ]
    );
}

#[tokio::test]
async fn the_state_at_a_version_is_the_customer_after_that_event() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    let limit = format!("/api/customers/{id}/credit-limit");
    let (status, _, _) = app
        .call("PUT", &limit, r#"{"credit_limit_cents":70000}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app
        .call("POST", &format!("/api/customers/{id}/deactivate"), "")
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, first) = app
        .get(&format!("/api/customers/{id}/state?version=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["aggregate_type"], "Customer");
    assert_eq!(first["aggregate_id"], json!(id));
    assert_eq!(first["version"], 1);
    assert_eq!(first["state"]["credit_limit"], 50000);
    assert_eq!(first["state"]["active"], true);

    let (status, _, current) = app.get(&format!("/api/customers/{id}/state")).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(current["version"], 3);
    assert_eq!(current["state"]["credit_limit"], 70000);
    assert_eq!(current["state"]["active"], false);
}

#[tokio::test]
async fn the_state_of_an_unknown_customer_or_an_unreached_version_is_404() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    for path in [
        format!("/api/customers/{}/state", Uuid::now_v7()),
        format!("/api/customers/{id}/state?version=2"),
        "/api/customers/not-a-uuid/state".to_owned(),
    ] {
        let (status, headers, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_problem(&headers, &body, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_state_version_below_1_is_422_and_one_that_is_no_number_is_400() {
    let app = TestApp::new().await;
    let id = app.register_ada().await;
    let (status, headers, body) = app
        .get(&format!("/api/customers/{id}/state?version=0"))
        .await;
    assert_problem(&headers, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, headers, body) = app
        .get(&format!("/api/customers/{id}/state?version=latest"))
        .await;
    assert_problem(&headers, &body, StatusCode::BAD_REQUEST);
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

//! The payments API against a real event store, through `router()` with no server.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use domain::payments::{DeclineReason, Payment, PaymentCommand};
use domain::values::Money;
use payments::{router, AppState};
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::{AggregateStore, CommandContext};
use platform::testing::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

struct TestApp {
    _db: TestDb,
    payments: Arc<AggregateStore<Payment>>,
    router: axum::Router,
}

impl TestApp {
    async fn new() -> Self {
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
            .await
            .expect("test database");
        let payments = Arc::new(AggregateStore::new("payments", db.pool.clone(), ()));
        let state = AppState {
            payments: payments.clone(),
        };
        Self {
            router: router(state),
            payments,
            _db: db,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, http::HeaderMap, Value) {
        let request = Request::get(path).body(Body::empty()).expect("request");
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

    /// Declines an order's payment, as the saga does for an order over its
    /// customer's credit.
    async fn declined_payment(&self, order_id: Uuid, customer_id: Uuid) {
        let context = CommandContext {
            correlation_id: "place-order-1".into(),
            causation_id: format!("orders:Order:{order_id}:2"),
            expected_version: None,
        };
        let decline = PaymentCommand::Decline {
            order_id,
            customer_id,
            amount: Money::from_cents(12_000).expect("amount"),
            reason: DeclineReason::InsufficientCredit,
        };
        let version = self
            .payments
            .execute(&order_id.to_string(), decline, &context)
            .await
            .expect("decline");
        assert_eq!(version, 1);
    }
}

#[tokio::test]
async fn the_event_stream_of_a_payment_is_its_events_in_order() {
    let app = TestApp::new().await;
    let (order_id, customer_id) = (Uuid::now_v7(), Uuid::now_v7());
    app.declined_payment(order_id, customer_id).await;

    let (status, headers, body) = app.get(&format!("/api/payments/{order_id}/events")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(body["aggregate_type"], "Payment");
    assert_eq!(body["aggregate_id"], order_id.to_string());
    let events = body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["event_id"], format!("payments:Payment:{order_id}:1"));
    assert_eq!(event["service"], "payments");
    assert_eq!(event["sequence"], 1);
    assert_eq!(event["event_type"], "PaymentDeclined");
    assert_eq!(event["event_version"], "1.0");
    assert_eq!(
        event["payload"],
        json!({
            "order_id": order_id,
            "customer_id": customer_id,
            "amount_cents": 12_000,
            "reason": "INSUFFICIENT_CREDIT",
        })
    );
    assert_eq!(event["metadata"]["correlation_id"], "place-order-1");
    assert_eq!(
        event["metadata"]["causation_id"],
        format!("orders:Order:{order_id}:2")
    );
}

#[tokio::test]
async fn from_sequence_skips_the_earlier_events() {
    let app = TestApp::new().await;
    let order_id = Uuid::now_v7();
    app.declined_payment(order_id, Uuid::now_v7()).await;
    let path = format!("/api/payments/{order_id}/events?from_sequence=2");
    let (status, _, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"], json!([]));
}

#[tokio::test]
async fn the_event_stream_of_an_order_without_a_payment_is_404_problem_json() {
    let app = TestApp::new().await;
    for path in [
        format!("/api/payments/{}/events", Uuid::now_v7()),
        "/api/payments/not-an-order/events".to_owned(),
    ] {
        let (status, headers, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        assert_eq!(body["status"], 404);
        assert!(body["title"].is_string() && body["detail"].is_string());
    }
}

#[tokio::test]
async fn a_malformed_from_sequence_is_400_problem_json() {
    let app = TestApp::new().await;
    let path = format!(
        "/api/payments/{}/events?from_sequence=first",
        Uuid::now_v7()
    );
    let (status, _, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], 400);
}

#[tokio::test]
async fn the_openapi_document_lists_the_event_stream_and_state_and_no_commands() {
    let app = TestApp::new().await;
    let (status, _, body) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = body["paths"].as_object().expect("paths");
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "/api/payments/{order_id}/events",
            "/api/payments/{order_id}/state"
        ]
    );
    for path in names {
        let operations = paths[path].as_object().expect("operations");
        let methods: Vec<&str> = operations.keys().map(String::as_str).collect();
        assert_eq!(methods, ["get"], "{path}");
    }
}

#[tokio::test]
async fn the_state_at_a_version_is_the_payment_after_that_event() {
    let app = TestApp::new().await;
    let (order_id, customer_id) = (Uuid::now_v7(), Uuid::now_v7());
    let context = CommandContext::default();
    let authorize = PaymentCommand::Authorize {
        order_id,
        customer_id,
        amount: Money::from_cents(4_200).expect("amount"),
    };
    for command in [authorize, PaymentCommand::Capture] {
        app.payments
            .execute(&order_id.to_string(), command, &context)
            .await
            .expect("payment command");
    }

    let (status, _, first) = app
        .get(&format!("/api/payments/{order_id}/state?version=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["aggregate_type"], "Payment");
    assert_eq!(first["version"], 1);
    assert_eq!(first["state"]["status"], "AUTHORIZED");
    assert_eq!(first["state"]["amount"], 4_200);

    let (status, _, current) = app.get(&format!("/api/payments/{order_id}/state")).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(current["version"], 2);
    assert_eq!(current["state"]["status"], "CAPTURED");

    let (status, headers, _) = app
        .get(&format!("/api/payments/{}/state", Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
}

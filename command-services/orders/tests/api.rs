//! The orders API against a real event store, through `router()` with no server.

mod app;

use app::{assert_problem, error_fields, json_request, order_body, TestApp, CUSTOMER};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn placing_an_order_answers_202_pending_at_version_1() {
    let app = TestApp::new().await;
    let (status, headers, body) = app
        .post("/api/orders", &order_body(&[("MUG-1", 2), ("TEA-7", 1)]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["version"], 1);
    let id = body["id"].as_str().expect("id");
    let id = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(id.get_version_num(), 7);
    assert!(headers.contains_key("x-request-id"));

    let get = Request::get(format!("/api/orders/{id}/events"))
        .body(Body::empty())
        .expect("request");
    let (status, _, stream) = app.send(get).await;
    assert_eq!(status, StatusCode::OK);
    let event = &stream["events"][0];
    assert_eq!(event["event_type"], "OrderPlaced");
    assert_eq!(event["event_id"], format!("orders:Order:{id}:1"));
    assert_eq!(
        event["payload"],
        json!({"order_id": id.to_string(), "customer_id": CUSTOMER, "lines": [
            {"sku": "MUG-1", "quantity": 2}, {"sku": "TEA-7", "quantity": 1}]})
    );
}

#[tokio::test]
async fn each_broken_rule_is_422_naming_its_field_and_writes_nothing() {
    let app = TestApp::new().await;
    let fifty_one: Vec<String> = (0..51).map(|i| format!("SKU-{i}")).collect();
    let fifty_one: Vec<(&str, i64)> = fifty_one.iter().map(|s| (s.as_str(), 1)).collect();
    let cases = [
        (order_body(&[]), "lines"),
        (order_body(&fifty_one), "lines"),
        (
            order_body(&[("MUG-1", 1), ("TEA-7", 0)]),
            "lines[1].quantity",
        ),
        (order_body(&[("MUG-1", 1001)]), "lines[0].quantity"),
        (order_body(&[("MUG-1", -3)]), "lines[0].quantity"),
        (order_body(&[("mug 1", 1)]), "lines[0].sku"),
        (order_body(&[("MUG-1", 1), ("MUG-1", 2)]), "lines[1].sku"),
        (
            json!({"customer_id": "not-a-uuid", "lines": [{"sku": "MUG-1", "quantity": 1}]})
                .to_string(),
            "customer_id",
        ),
    ];
    for (body, field) in cases {
        let answer = app.post("/api/orders", &body).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_fields(&answer.2), [field], "{body}");
    }
    let (_, _, body) = app
        .post(
            "/api/orders",
            &json!({"customer_id": "x", "lines": [{"sku": "a", "quantity": 0}]}).to_string(),
        )
        .await;
    assert_eq!(
        error_fields(&body),
        ["customer_id", "lines[0].sku", "lines[0].quantity"]
    );
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400_and_write_nothing() {
    let app = TestApp::new().await;
    let cases = [
        "{not json",
        r#"{"customer_id": "0190a0f6-5b1c-7c3e-8f00-000000000001", "lines": [{"sku": "MUG-1", "quantity": "two"}]}"#,
        r#"{"customer_id": "0190a0f6-5b1c-7c3e-8f00-000000000001", "lines": [{"sku": "MUG-1", "quantity": 1.5}]}"#,
        r#"{"customer_id": 7, "lines": []}"#,
        r#"{"customer_id": "0190a0f6-5b1c-7c3e-8f00-000000000001", "lines": {"sku": "MUG-1"}}"#,
        r#"{"lines": [{"sku": "MUG-1", "quantity": 1}]}"#,
    ];
    for body in cases {
        let answer = app.post("/api/orders", body).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST);
    }
    let id = app.place_mug_order().await;
    let answer = app
        .post(&format!("/api/orders/{id}/cancel"), r#"{"reason": 5}"#)
        .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn a_pending_order_can_be_cancelled_with_or_without_a_body() {
    let app = TestApp::new().await;
    let bodies = ["", "{}", r#"{"reason": "changed my mind"}"#];
    for body in bodies {
        let id = app.place_mug_order().await;
        let (status, _, answer) = app.post(&format!("/api/orders/{id}/cancel"), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}: {answer}");
        assert_eq!(answer, json!({"id": id, "version": 2}));
    }
    // No body and no content type at all, as `curl -X POST` sends it.
    let id = app.place_mug_order().await;
    let bare = Request::post(format!("/api/orders/{id}/cancel"))
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = app.send(bare).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let events = Request::get(format!("/api/orders/{id}/events?from_sequence=2"))
        .body(Body::empty())
        .expect("request");
    let (_, _, stream) = app.send(events).await;
    assert_eq!(stream["events"][0]["event_type"], "OrderCancelled");
    assert_eq!(stream["events"][0]["event_version"], "2.0");
    assert_eq!(
        stream["events"][0]["payload"],
        json!({"reason": null, "cancelled_from": "PENDING"})
    );
}

#[tokio::test]
async fn cancelling_twice_is_409_and_writes_nothing_more() {
    let app = TestApp::new().await;
    let id = app.place_mug_order().await;
    let path = format!("/api/orders/{id}/cancel");
    let (status, _, _) = app.post(&path, r#"{"reason": "late"}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let answer = app.post(&path, r#"{"reason": "late"}"#).await;
    assert_problem(&answer, StatusCode::CONFLICT);
    assert_eq!(app.event_count().await, 2);
}

#[tokio::test]
async fn shipping_an_order_that_is_not_confirmed_is_409() {
    let app = TestApp::new().await;
    let id = app.place_mug_order().await;
    let answer = app.post(&format!("/api/orders/{id}/ship"), "").await;
    assert_problem(&answer, StatusCode::CONFLICT);
    assert!(answer.2["detail"]
        .as_str()
        .is_some_and(|d| d.contains("PENDING")));
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn unknown_orders_are_404() {
    let app = TestApp::new().await;
    let ghost = uuid::Uuid::now_v7();
    for path in [
        format!("/api/orders/{ghost}/cancel"),
        format!("/api/orders/{ghost}/ship"),
        "/api/orders/not-a-uuid/cancel".to_owned(),
        "/api/orders/not-a-uuid/ship".to_owned(),
    ] {
        let answer = app.post(&path, "").await;
        assert_problem(&answer, StatusCode::NOT_FOUND);
    }
    for path in [
        format!("/api/orders/{ghost}/events"),
        "/api/orders/not-a-uuid/events".to_owned(),
    ] {
        let get = Request::get(path).body(Body::empty()).expect("request");
        assert_problem(&app.send(get).await, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn the_same_idempotency_key_sent_three_times_at_once_places_one_order() {
    let app = TestApp::new().await;
    let body = order_body(&[("LAMP", 1)]);
    let attempt = || {
        let mut request = json_request("POST", "/api/orders", &body);
        request
            .headers_mut()
            .insert("idempotency-key", "place-lamp-1".parse().expect("header"));
        app.send(request)
    };
    let answers = futures::future::join_all([attempt(), attempt(), attempt()]).await;
    let first = &answers[0].2;
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body, first, "every answer names the same order");
    }
    assert_eq!(first["version"], 1);
    let replayed = answers
        .iter()
        .filter(|(_, headers, _)| headers.contains_key("idempotent-replayed"))
        .count();
    assert_eq!(replayed, 2, "two of the three answers are replays");
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn if_match_with_a_stale_version_is_412_and_the_right_one_succeeds() {
    let app = TestApp::new().await;
    let id = app.place_mug_order().await;
    let cancel = |version: &str| {
        let mut request = json_request("POST", &format!("/api/orders/{id}/cancel"), "{}");
        request
            .headers_mut()
            .insert(header::IF_MATCH, version.parse().expect("header"));
        app.send(request)
    };
    let answer = cancel("\"3\"").await;
    assert_problem(&answer, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.event_count().await, 1);

    let (status, _, body) = cancel("\"1\"").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"id": id, "version": 2}));
}

#[tokio::test]
async fn the_event_stream_carries_the_request_id_as_correlation_id() {
    let app = TestApp::new().await;
    let mut place = json_request("POST", "/api/orders", &order_body(&[("MUG-1", 1)]));
    place
        .headers_mut()
        .insert("x-request-id", "req-77".parse().expect("header"));
    let (_, _, body) = app.send(place).await;
    let id = body["id"].as_str().expect("id");
    let get = Request::get(format!("/api/orders/{id}/events"))
        .body(Body::empty())
        .expect("request");
    let (_, _, stream) = app.send(get).await;
    assert_eq!(stream["aggregate_type"], "Order");
    assert_eq!(stream["aggregate_id"], id);
    assert_eq!(stream["events"][0]["metadata"]["correlation_id"], "req-77");
    assert_eq!(stream["events"][0]["metadata"]["causation_id"], "req-77");
}

#[tokio::test]
async fn the_openapi_document_lists_every_order_route() {
    let app = TestApp::new().await;
    let get = Request::get("/openapi.json")
        .body(Body::empty())
        .expect("request");
    let (status, _, document) = app.send(get).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/orders",
        "/api/orders/{id}/cancel",
        "/api/orders/{id}/ship",
        "/api/orders/{id}/events",
        "/api/orders/{id}/state",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is missing");
    }
    let cancel_body = &document["paths"]["/api/orders/{id}/cancel"]["post"]["requestBody"];
    assert_ne!(cancel_body["required"], json!(true), "{cancel_body}");
}

#[tokio::test]
async fn the_state_at_a_version_is_the_order_after_that_event() {
    let app = TestApp::new().await;
    let id = app.place_mug_order().await;
    let (status, _, _) = app.post(&format!("/api/orders/{id}/cancel"), "").await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let get = |path: String| Request::get(path).body(Body::empty()).expect("request");
    let (status, _, first) = app
        .send(get(format!("/api/orders/{id}/state?version=1")))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["aggregate_type"], "Order");
    assert_eq!(first["aggregate_id"], json!(id));
    assert_eq!(first["version"], 1);
    assert_eq!(first["state"]["status"], "PENDING");
    assert_eq!(first["state"]["customer_id"], CUSTOMER);

    let (status, _, current) = app.send(get(format!("/api/orders/{id}/state"))).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(current["version"], 2);
    assert_eq!(current["state"]["status"], "CANCELLED");

    let unknown = app
        .send(get(format!("/api/orders/{}/state", uuid::Uuid::now_v7())))
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND);
    let unreached = app
        .send(get(format!("/api/orders/{id}/state?version=3")))
        .await;
    assert_problem(&unreached, StatusCode::NOT_FOUND);
    let below_one = app
        .send(get(format!("/api/orders/{id}/state?version=-1")))
        .await;
    assert_problem(&below_one, StatusCode::UNPROCESSABLE_ENTITY);
}

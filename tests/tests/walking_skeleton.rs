//! One product through the real pipeline: REST command at the gateway, event store,
//! relay, JetStream, projection, read model, query service, and back out of the
//! gateway.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn a_restock_is_visible_through_the_gateway_with_min_version() {
    let stack = Stack::start().await;
    let client = reqwest::Client::new();
    let api = &stack.gateway;

    let (status, _, body) = send(client.post(format!("{api}/api/products")).json(&json!({
        "sku": "TSHIRT-RED", "name": "Red T-shirt", "price_cents": 1999, "initial_stock": 10
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, json!({"sku": "TSHIRT-RED", "version": 1}));

    let (status, _, body) = send(
        client
            .post(format!("{api}/api/products/TSHIRT-RED/restock"))
            .json(&json!({"quantity": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let version = body["version"].as_i64().expect("version");
    assert_eq!(version, 2);

    let (status, _, product) = send(client.get(format!(
        "{api}/api/products/TSHIRT-RED?min_version={version}"
    )))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        product,
        json!({"sku": "TSHIRT-RED", "name": "Red T-shirt", "price_cents": 1999,
               "on_hand": 15, "reserved": 0, "available": 15, "version": 2})
    );

    let (status, _, list) = send(client.get(format!("{api}/api/products"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["sku"], "TSHIRT-RED");
    stack.stop().await;
}

#[tokio::test]
async fn bad_input_through_the_gateway_is_problem_json_and_writes_no_event() {
    let stack = Stack::start().await;
    let client = reqwest::Client::new();
    let api = &stack.gateway;
    let (status, _, _) = send(client.post(format!("{api}/api/products")).json(&json!({
        "sku": "MUG", "name": "Mug", "price_cents": 500
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let bad = [
        (
            client
                .post(format!("{api}/api/products"))
                .header("content-type", "application/json")
                .body("{\"sku\":"),
            StatusCode::BAD_REQUEST,
        ),
        (
            client
                .post(format!("{api}/api/products"))
                .json(&json!({"sku": "MUG", "name": "Mug", "price_cents": "5"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            client
                .post(format!("{api}/api/products"))
                .json(&json!({"sku": "bad sku", "name": "x", "price_cents": 5})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            client
                .post(format!("{api}/api/products/MUG/restock"))
                .json(&json!({"quantity": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            client
                .put(format!("{api}/api/products/MUG/price"))
                .json(&json!({"price_cents": -1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            client
                .post(format!("{api}/api/products"))
                .json(&json!({"sku": "MUG", "name": "Mug", "price_cents": 5})),
            StatusCode::CONFLICT,
        ),
        (
            client.get(format!("{api}/api/products/NOPE")),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (request, expected) in bad {
        let (status, headers, problem) = send(request).await;
        assert_eq!(status, expected, "{problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["status"], json!(expected.as_u16()));
    }
    let (_, _, body) = send(client.get(format!("{api}/api/products/MUG/events"))).await;
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        stack.stored_events("inventory").await,
        1,
        "only the first POST wrote an event"
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_request_id_travels_from_the_gateway_into_the_event_metadata() {
    let stack = Stack::start().await;
    let client = reqwest::Client::new();
    let api = &stack.gateway;
    let (status, headers, _) = send(
        client
            .post(format!("{api}/api/products"))
            .header("x-request-id", "tour-0001")
            .json(&json!({"sku": "CAP", "name": "Cap", "price_cents": 900})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["x-request-id"], "tour-0001");

    let (_, headers, stream) = send(client.get(format!("{api}/api/products/CAP/events"))).await;
    assert!(
        headers.contains_key("x-request-id"),
        "the gateway assigns one when none is sent"
    );
    assert_eq!(
        stream["events"][0]["metadata"]["correlation_id"],
        "tour-0001"
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_gateway_serves_one_openapi_document_for_every_service() {
    let stack = Stack::start().await;
    let client = reqwest::Client::new();
    let (status, _, document) =
        send(client.get(format!("{}/api/openapi.json", stack.gateway))).await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/api/products",
        "/api/products/{sku}",
        "/api/products/{sku}/restock",
        "/api/products/{sku}/price",
        "/api/products/{sku}/events",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(paths["/api/products"].get("post").is_some());
    assert!(paths["/api/products"].get("get").is_some());

    let docs = client
        .get(format!("{}/docs/", stack.gateway))
        .send()
        .await
        .expect("docs page");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("html").contains("swagger"));
    stack.stop().await;
}

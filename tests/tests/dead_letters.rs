//! Dead letters on the whole stack, through the gateway: a projection that keeps
//! failing on one event parks it and goes on; the gateway lists it with its
//! service, and a retry after the fix applies it.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

/// Parking takes the consumer's 8 attempts (about 13 s of backoff) and more on a
/// busy machine.
const PARK_WAIT: Duration = Duration::from_secs(90);

async fn dead_letters(stack: &Stack) -> Value {
    let (status, body) = stack.get("/api/admin/dead-letters").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn post_empty(stack: &Stack, path: &str) -> (StatusCode, Value) {
    let response = stack
        .client
        .post(stack.url(path))
        .send()
        .await
        .expect("gateway answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_poisoned_projection_event_is_parked_listed_and_retried_through_the_gateway() {
    let stack = Stack::start().await;
    // A read-model table that refuses one row stands for a projection bug: a
    // handler error, not an outage.
    let read_models = &stack.db("read_models").pool;
    sqlx::query(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'product % is poisoned', NEW.sku; END $$",
    )
    .execute(read_models)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON products FOR EACH ROW
         WHEN (NEW.sku = 'POISON') EXECUTE FUNCTION refuse_poison()",
    )
    .execute(read_models)
    .await
    .unwrap();

    for sku in ["POISON", "MUG"] {
        let (status, body) = stack
            .post(
                "/api/products",
                json!({"sku": sku, "name": sku, "price_cents": 100, "initial_stock": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let deadline = Instant::now() + PARK_WAIT;
    let list = loop {
        let list = dead_letters(&stack).await;
        if list["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            break list;
        }
        assert!(Instant::now() < deadline, "nothing parked: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(list["errors"], json!([]), "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let letter = &items[0];
    assert_eq!(letter["service"], "projections");
    assert_eq!(letter["consumer"], "products");
    assert_eq!(letter["event_type"], "ProductAdded");
    assert_eq!(letter["aggregate_id"], "POISON");
    assert_eq!(letter["attempts"], 8);
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("POISON is poisoned"),
        "{letter}"
    );
    // The consumer went on: the product after the poison is served.
    stack
        .eventually("/api/products/MUG", |p| p["sku"] == "MUG")
        .await;
    let (status, _) = stack.get("/api/products/POISON").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let id = letter["id"].as_i64().unwrap();
    let retry = format!("/api/admin/dead-letters/projections/{id}/retry");
    let (status, problem) = post_empty(&stack, &retry).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("poisoned"),
        "{problem}"
    );
    let (status, _) = post_empty(
        &stack,
        &format!("/api/admin/dead-letters/billing/{id}/retry"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    sqlx::query("DROP TRIGGER poison ON products")
        .execute(read_models)
        .await
        .unwrap();
    let (status, applied) = post_empty(&stack, &retry).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["aggregate_id"], "POISON");
    let (status, product) = stack.get("/api/products/POISON").await;
    assert_eq!(status, StatusCode::OK, "{product}");
    assert_eq!(dead_letters(&stack).await["items"], json!([]));

    // The merged API document shows the gateway's routes, not the services' own.
    let (_, document) = stack.get("/api/openapi.json").await;
    let paths = &document["paths"];
    assert!(paths["/api/admin/dead-letters"]["get"].is_object());
    assert!(paths["/api/admin/dead-letters/{service}/{id}/retry"]["post"].is_object());
    assert!(paths["/api/admin/dead-letters/{id}/retry"].is_null());
    stack.stop().await;
}

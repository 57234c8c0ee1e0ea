//! The catalog's HTTP API against a real read-model database, filled by SQL.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::body::Body;
use catalog::{router, AppState};
use http::{header, Request, StatusCode};
use platform::db::READ_MODEL_MIGRATIONS;
use platform::testing::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn read_model() -> TestDb {
    TestDb::new(&[&READ_MODEL_MIGRATIONS, &projections::MIGRATIONS])
        .await
        .unwrap()
}

async fn insert(db: &TestDb, sku: &str, on_hand: i64, reserved: i64, version: i64) {
    sqlx::query(
        "INSERT INTO products (sku, name, price_cents, on_hand, reserved, version, updated_at)
         VALUES ($1, 'Product ' || $1, 1299, $2, $3, $4, now())",
    )
    .bind(sku)
    .bind(on_hand)
    .bind(reserved)
    .bind(version)
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
async fn a_product_is_served_with_its_stock_figures() {
    let db = read_model().await;
    insert(&db, "MUG-1", 10, 3, 4).await;

    let (status, _, body) = get(&db, "/api/products/MUG-1").await;

    assert_eq!(status, StatusCode::OK);
    let expected = json!({"sku": "MUG-1", "name": "Product MUG-1", "price_cents": 1299,
        "on_hand": 10, "reserved": 3, "available": 7, "version": 4});
    assert_eq!(body, expected);
}

#[tokio::test]
async fn paging_visits_every_product_once_in_sku_order() {
    let db = read_model().await;
    let mut skus: Vec<String> = (0..45)
        .map(|n| format!("SKU-{:02}", (n * 17) % 45))
        .collect();
    for sku in &skus {
        insert(&db, sku, 1, 0, 1).await;
    }
    skus.sort();

    let mut seen = Vec::new();
    let mut page_sizes = Vec::new();
    let mut uri = "/api/products?limit=20".to_owned();
    loop {
        let (status, _, body) = get(&db, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap();
        page_sizes.push(items.len());
        seen.extend(items.iter().map(|p| p["sku"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/products?limit=20&cursor={cursor}"),
            None => break,
        }
        assert!(page_sizes.len() < 10, "paging does not end");
    }

    assert_eq!(page_sizes, [20, 20, 5]);
    assert_eq!(seen, skus);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 45);
}

#[tokio::test]
async fn the_default_page_has_twenty_products_and_the_last_page_no_cursor() {
    let db = read_model().await;
    for n in 0..20 {
        insert(&db, &format!("A-{n:02}"), 1, 0, 1).await;
    }

    let (status, _, body) = get(&db, "/api/products").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 20);
    assert_eq!(body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn an_unknown_product_is_a_404_problem() {
    let db = read_model().await;

    let (status, content_type, body) = get(&db, "/api/products/NOPE-1").await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn a_limit_outside_1_to_100_is_a_422_naming_the_field() {
    let db = read_model().await;
    for limit in [0, 101, -1] {
        let (status, content_type, body) = get(&db, &format!("/api/products?limit={limit}")).await;

        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "limit {limit}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["errors"][0]["field"], "limit");
    }
}

#[tokio::test]
async fn a_cursor_the_service_did_not_issue_is_a_400() {
    let db = read_model().await;

    let (status, content_type, _) = get(&db, "/api/products?cursor=not-a-cursor").await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type, "application/problem+json");
}

#[tokio::test]
async fn min_version_waits_for_the_read_model_to_catch_up() {
    let db = read_model().await;
    insert(&db, "MUG-1", 10, 0, 1).await;
    let pool = db.pool.clone();
    let projector = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("UPDATE products SET reserved = 2, version = 2 WHERE sku = 'MUG-1'")
            .execute(&pool)
            .await
            .unwrap();
    });

    let started = Instant::now();
    let (status, _, body) = get(&db, "/api/products/MUG-1?min_version=2").await;
    let waited = started.elapsed();

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 2);
    assert_eq!(body["available"], 8);
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
async fn a_min_version_that_never_arrives_answers_with_the_current_row_after_2_s() {
    let db = read_model().await;
    insert(&db, "MUG-1", 10, 0, 1).await;

    let started = Instant::now();
    let (status, _, body) = get(&db, "/api/products/MUG-1?min_version=5").await;
    let (missing, _, _) = get(&db, "/api/products/NOPE-1?min_version=1").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 1);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "did not wait twice 2 s"
    );
    assert_eq!(missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_openapi_document_describes_the_product_routes() {
    let db = read_model().await;

    let (status, _, body) = get(&db, "/openapi.json").await;

    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"]["/api/products"]["get"].is_object(), "{body}");
    assert!(
        body["paths"]["/api/products/{sku}"]["get"].is_object(),
        "{body}"
    );
    assert!(
        body["components"]["schemas"]["Product"].is_object(),
        "{body}"
    );
}

#[test]
fn min_version_waits_on_the_read_model_its_projection_announces() {
    use platform::consumer::Handler;

    assert_eq!(
        catalog::products::READ_MODEL,
        projections::products::ProductsProjection.name()
    );
}

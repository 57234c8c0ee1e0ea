//! The orders routes of the orders view against a real read-model database,
//! filled by SQL, and the service's OpenAPI document and health.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use http::StatusCode;
use platform::testing::TestDb;
use serde_json::{json, Value};
use support::{get, order_id, read_model};
use uuid::Uuid;

const PLACED_AT: &str = "2027-01-15T08:00:00Z";
const UPDATED_AT: &str = "2027-01-15T08:00:05Z";

/// An order with the given status and lines of (sku, quantity, unit price).
struct NewOrder<'a> {
    id: Uuid,
    customer_id: Uuid,
    status: &'a str,
    total_cents: Option<i64>,
    reason: Option<&'a str>,
    version: i64,
    lines: &'a [(&'a str, i64, Option<i64>)],
}

async fn insert(db: &TestDb, order: NewOrder<'_>) {
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, total_cents, reason, version, placed_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8::timestamptz)",
    )
    .bind(order.id)
    .bind(order.customer_id)
    .bind(order.status)
    .bind(order.total_cents)
    .bind(order.reason)
    .bind(order.version)
    .bind(PLACED_AT)
    .bind(UPDATED_AT)
    .execute(&db.pool)
    .await
    .unwrap();
    for (number, (sku, quantity, price)) in order.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_lines (order_id, line_number, sku, quantity, unit_price_cents)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(order.id)
        .bind(number as i32 + 1)
        .bind(sku)
        .bind(quantity)
        .bind(price)
        .execute(&db.pool)
        .await
        .unwrap();
    }
}

async fn insert_pending(db: &TestDb, id: Uuid, customer_id: Uuid) {
    let lines = [("MUG-1", 1, None)];
    let order = NewOrder {
        id,
        customer_id,
        status: "PENDING",
        total_cents: None,
        reason: None,
        version: 1,
        lines: &lines,
    };
    insert(db, order).await;
}

/// Follows `next_cursor` from `uri` to the last page; returns the ids and page sizes.
async fn every_page(db: &TestDb, uri: &str) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    let mut next = uri.to_owned();
    loop {
        let (status, _, body) = get(db, &next).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap();
        sizes.push(items.len());
        ids.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(cursor) => next = format!("{uri}&cursor={cursor}"),
            None => return (ids, sizes),
        }
        assert!(sizes.len() < 20, "paging does not end");
    }
}

#[tokio::test]
async fn an_order_is_served_with_its_lines_in_the_order_placed() {
    let db = read_model().await;
    let (id, customer_id) = (order_id(1), Uuid::now_v7());
    let lines = [("TEA-7", 1, Some(450)), ("MUG-1", 2, Some(1000))];
    let order = NewOrder {
        id,
        customer_id,
        status: "REJECTED",
        total_cents: Some(2450),
        reason: Some("INSUFFICIENT_CREDIT"),
        version: 5,
        lines: &lines,
    };
    insert(&db, order).await;

    let (status, _, body) = get(&db, &format!("/api/orders/{id}")).await;

    assert_eq!(status, StatusCode::OK);
    let expected = json!({"id": id, "customer_id": customer_id, "status": "REJECTED",
        "lines": [{"sku": "TEA-7", "quantity": 1, "unit_price_cents": 450},
                  {"sku": "MUG-1", "quantity": 2, "unit_price_cents": 1000}],
        "total_cents": 2450, "reason": "INSUFFICIENT_CREDIT", "operator_needed": null,
        "version": 5, "placed_at": PLACED_AT, "updated_at": UPDATED_AT});
    assert_eq!(body, expected);
}

#[tokio::test]
async fn an_order_not_yet_reserved_has_null_prices_and_total() {
    let db = read_model().await;
    insert_pending(&db, order_id(1), Uuid::now_v7()).await;

    let (_, _, body) = get(&db, &format!("/api/orders/{}", order_id(1))).await;

    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["total_cents"], Value::Null);
    assert_eq!(body["reason"], Value::Null);
    assert_eq!(body["lines"][0]["unit_price_cents"], Value::Null);
}

#[tokio::test]
async fn an_order_whose_compensation_failed_shows_that_an_operator_is_needed() {
    let db = read_model().await;
    insert_pending(&db, order_id(1), Uuid::now_v7()).await;
    sqlx::query(
        "UPDATE orders SET status = 'CANCELLED', operator_needed = $2::jsonb WHERE id = $1",
    )
    .bind(order_id(1))
    .bind(json!({"step": "VOID_PAYMENT", "error": "already captured", "at": UPDATED_AT}))
    .execute(&db.pool)
    .await
    .expect("update order");

    let (_, _, body) = get(&db, &format!("/api/orders/{}", order_id(1))).await;

    assert_eq!(
        body["operator_needed"],
        json!({"step": "VOID_PAYMENT", "error": "already captured", "at": UPDATED_AT})
    );
}

#[tokio::test]
async fn paging_visits_every_order_once_newest_first() {
    let db = read_model().await;
    let customer_id = Uuid::now_v7();
    // Inserted out of order: the list orders by id, not by insertion.
    for n in (0..45).map(|n| (n * 17) % 45) {
        insert_pending(&db, order_id(n), customer_id).await;
    }

    let (ids, sizes) = every_page(&db, "/api/orders?limit=20").await;

    assert_eq!(sizes, [20, 20, 5]);
    let newest_first: Vec<String> = (0..45).rev().map(|n| order_id(n).to_string()).collect();
    assert_eq!(ids, newest_first);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 45);
}

#[tokio::test]
async fn the_list_filters_by_customer_and_by_status_and_pages_within_the_filter() {
    let db = read_model().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    for n in 0..30 {
        let customer_id = if n % 3 == 0 { bob } else { ada };
        let status = if n % 2 == 0 { "CONFIRMED" } else { "PENDING" };
        let order = NewOrder {
            id: order_id(n),
            customer_id,
            status,
            total_cents: Some(100),
            reason: None,
            version: 2,
            lines: &[],
        };
        insert(&db, order).await;
    }
    let expected = |keep: &dyn Fn(u64) -> bool| -> Vec<String> {
        let ids = (0..30).rev().filter(|n| keep(*n));
        ids.map(|n| order_id(n).to_string()).collect()
    };

    let (bobs, _) = every_page(&db, &format!("/api/orders?customer_id={bob}&limit=3")).await;
    assert_eq!(bobs, expected(&|n| n % 3 == 0));
    let (confirmed, _) = every_page(&db, "/api/orders?status=CONFIRMED&limit=4").await;
    assert_eq!(confirmed, expected(&|n| n % 2 == 0));
    let both = format!("/api/orders?customer_id={ada}&status=PENDING&limit=2");
    let (adas_pending, _) = every_page(&db, &both).await;
    assert_eq!(adas_pending, expected(&|n| n % 3 != 0 && n % 2 == 1));
    let nobody = format!("/api/orders?customer_id={}", Uuid::now_v7());
    let (_, _, body) = get(&db, &nobody).await;
    assert_eq!(body, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn the_default_page_has_twenty_orders_and_the_last_page_no_cursor() {
    let db = read_model().await;
    for n in 0..20 {
        insert_pending(&db, order_id(n), Uuid::now_v7()).await;
    }

    let (status, _, body) = get(&db, "/api/orders").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 20);
    assert_eq!(body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn an_unknown_or_malformed_order_id_is_a_404_problem() {
    let db = read_model().await;
    for uri in [
        format!("/api/orders/{}", order_id(1)),
        "/api/orders/not-a-uuid".to_owned(),
        format!("/api/payments/{}", order_id(1)),
        "/api/payments/42".to_owned(),
    ] {
        let (status, content_type, body) = get(&db, &uri).await;

        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["status"], 404);
    }
}

#[tokio::test]
async fn a_limit_outside_1_to_100_is_a_422_naming_the_field() {
    let db = read_model().await;
    for limit in [0, 101, -1] {
        let (status, content_type, body) = get(&db, &format!("/api/orders?limit={limit}")).await;

        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "limit {limit}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["errors"][0]["field"], "limit");
    }
}

#[tokio::test]
async fn an_unknown_status_and_a_customer_id_that_is_no_uuid_are_422s_naming_both() {
    let db = read_model().await;

    let uri = "/api/orders?status=SHIPPING&customer_id=ada";
    let (status, content_type, body) = get(&db, uri).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(content_type, "application/problem+json");
    let fields: HashSet<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, HashSet::from(["status", "customer_id"]));
    let (lower_case, _, _) = get(&db, "/api/orders?status=pending").await;
    assert_eq!(lower_case, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_cursor_the_service_did_not_issue_is_a_400() {
    let db = read_model().await;
    let hyphenated = order_id(1).to_string();
    for cursor in ["not-a-cursor", hyphenated.as_str(), &"g".repeat(32)] {
        let (status, content_type, _) = get(&db, &format!("/api/orders?cursor={cursor}")).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{cursor}");
        assert_eq!(content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn min_version_waits_for_the_order_to_catch_up() {
    let db = read_model().await;
    let id = order_id(1);
    insert_pending(&db, id, Uuid::now_v7()).await;
    let pool = db.pool.clone();
    let projector = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("UPDATE orders SET status = 'REJECTED', reason = 'OUT_OF_STOCK', version = 2 WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    });

    let started = Instant::now();
    let (status, _, body) = get(&db, &format!("/api/orders/{id}?min_version=2")).await;
    let waited = started.elapsed();

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["version"], &body["status"]),
        (&json!(2), &json!("REJECTED"))
    );
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
async fn a_min_version_that_never_arrives_answers_with_the_current_order_after_2_s() {
    let db = read_model().await;
    insert_pending(&db, order_id(1), Uuid::now_v7()).await;

    let started = Instant::now();
    let (status, _, body) = get(&db, &format!("/api/orders/{}?min_version=3", order_id(1))).await;
    let missing = format!("/api/orders/{}?min_version=1", order_id(2));
    let (missing, _, _) = get(&db, &missing).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 1);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "did not wait twice 2 s"
    );
    assert_eq!(missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_health_answers() {
    let db = read_model().await;

    let (status, _, body) = get(&db, "/openapi.json").await;

    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/orders",
        "/api/orders/{id}",
        "/api/payments/{order_id}",
    ] {
        assert!(body["paths"][path]["get"].is_object(), "{path}: {body}");
    }
    for schema in ["Order", "OrderPage", "OrderStatus", "Payment"] {
        assert!(
            body["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
    assert_eq!(get(&db, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&db, "/readyz").await.0, StatusCode::OK);
}

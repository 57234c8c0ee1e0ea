//! The order saga across every service, through the gateway: reserve stock,
//! authorize payment, confirm, or compensate.

mod support;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

/// Adds a product and returns its sku.
async fn product(stack: &Stack, sku: &str, price_cents: i64, stock: i64) -> String {
    let (status, body) = stack
        .post(
            "/api/products",
            json!({"sku": sku, "name": sku, "price_cents": price_cents, "initial_stock": stock}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    sku.to_owned()
}

/// Registers a customer and returns its id.
async fn customer(stack: &Stack, credit_limit_cents: i64) -> String {
    let (status, body) = stack
        .post(
            "/api/customers",
            json!({"name": "Ada", "email": "ada@example.com", "credit_limit_cents": credit_limit_cents}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("customer id").to_owned()
}

/// Places an order and returns its id.
async fn place(stack: &Stack, customer_id: &str, lines: Value) -> String {
    let (status, body) = stack
        .post(
            "/api/orders",
            json!({"customer_id": customer_id, "lines": lines}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "PENDING");
    body["id"].as_str().expect("order id").to_owned()
}

/// Waits until the order has left PENDING and returns it.
async fn settled(stack: &Stack, order_id: &str) -> Value {
    stack
        .eventually(&format!("/api/orders/{order_id}"), |o| {
            o["status"] != "PENDING"
        })
        .await
}

#[tokio::test]
async fn an_order_is_confirmed_then_shipped() {
    let stack = Stack::start().await;
    let mug = product(&stack, "MUG", 1250, 10).await;
    let ada = customer(&stack, 100_000).await;
    let order = place(&stack, &ada, json!([{"sku": mug, "quantity": 2}])).await;

    let confirmed = settled(&stack, &order).await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    assert_eq!(confirmed["total_cents"], 2500);
    assert_eq!(confirmed["lines"][0]["unit_price_cents"], 1250);
    stack
        .eventually("/api/products/MUG", |p| {
            p["reserved"] == 2 && p["available"] == 8
        })
        .await;
    stack
        .eventually(&format!("/api/customers/{ada}"), |c| {
            c["available_credit_cents"] == 97_500 && c["lifetime_spend_cents"] == 2500
        })
        .await;
    stack
        .eventually(&format!("/api/customers/{ada}/notifications"), |n| {
            kinds(n).contains(&"ORDER_CONFIRMED".to_owned())
                && kinds(n).contains(&"WELCOME".to_owned())
        })
        .await;

    let (status, _) = stack
        .post(&format!("/api/orders/{order}/ship"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    stack
        .eventually(&format!("/api/orders/{order}"), |o| {
            o["status"] == "SHIPPED"
        })
        .await;
    stack
        .eventually("/api/products/MUG", |p| {
            p["on_hand"] == 8 && p["reserved"] == 0
        })
        .await;
    stack
        .eventually(&format!("/api/payments/{order}"), |p| {
            p["status"] == "CAPTURED"
        })
        .await;
    stack.stop().await;
}

fn kinds(notifications: &Value) -> Vec<String> {
    notifications["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|n| n["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn out_of_stock_on_the_second_of_three_lines_rejects_and_releases_everything() {
    let stack = Stack::start().await;
    let skus = [
        product(&stack, "PEN", 100, 5).await,
        product(&stack, "INK", 300, 1).await,
        product(&stack, "PAD", 200, 5).await,
    ];
    let ada = customer(&stack, 100_000).await;
    let order = place(
        &stack,
        &ada,
        json!([{"sku": "PEN", "quantity": 2}, {"sku": "INK", "quantity": 3}, {"sku": "PAD", "quantity": 1}]),
    )
    .await;
    let rejected = settled(&stack, &order).await;
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(rejected["reason"], "OUT_OF_STOCK");
    for (sku, stock) in skus.iter().zip([5, 1, 5]) {
        stack
            .eventually(&format!("/api/products/{sku}"), |p| {
                p["available"] == stock && p["reserved"] == 0
            })
            .await;
    }
    stack.stop().await;
}

#[tokio::test]
async fn insufficient_credit_rejects_and_releases_the_stock() {
    let stack = Stack::start().await;
    let tv = product(&stack, "TV", 50_000, 3).await;
    let ada = customer(&stack, 10_000).await;
    let order = place(&stack, &ada, json!([{"sku": tv, "quantity": 1}])).await;
    let rejected = settled(&stack, &order).await;
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(rejected["reason"], "INSUFFICIENT_CREDIT");
    stack
        .eventually("/api/products/TV", |p| {
            p["available"] == 3 && p["reserved"] == 0
        })
        .await;
    let (_, payment) = stack.get(&format!("/api/payments/{order}")).await;
    assert_eq!(payment["status"], "DECLINED");
    stack.stop().await;
}

#[tokio::test]
async fn cancelling_a_confirmed_order_releases_stock_and_voids_the_payment() {
    let stack = Stack::start().await;
    let hat = product(&stack, "HAT", 1000, 4).await;
    let ada = customer(&stack, 50_000).await;
    let order = place(&stack, &ada, json!([{"sku": hat, "quantity": 3}])).await;
    assert_eq!(settled(&stack, &order).await["status"], "CONFIRMED");

    let (status, _) = stack
        .post(
            &format!("/api/orders/{order}/cancel"),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    stack
        .eventually(&format!("/api/orders/{order}"), |o| {
            o["status"] == "CANCELLED"
        })
        .await;
    stack
        .eventually("/api/products/HAT", |p| {
            p["available"] == 4 && p["reserved"] == 0
        })
        .await;
    stack
        .eventually(&format!("/api/payments/{order}"), |p| {
            p["status"] == "VOIDED"
        })
        .await;
    stack
        .eventually(&format!("/api/customers/{ada}"), |c| {
            c["available_credit_cents"] == 50_000 && c["lifetime_spend_cents"] == 0
        })
        .await;
    stack.stop().await;
}

#[tokio::test]
async fn cancelling_a_shipped_order_is_409() {
    let stack = Stack::start().await;
    let cup = product(&stack, "CUP", 700, 2).await;
    let ada = customer(&stack, 50_000).await;
    let order = place(&stack, &ada, json!([{"sku": cup, "quantity": 1}])).await;
    assert_eq!(settled(&stack, &order).await["status"], "CONFIRMED");
    let (status, _) = stack
        .post(&format!("/api/orders/{order}/ship"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, problem) = stack
        .post(&format!("/api/orders/{order}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["status"], 409);
    stack.stop().await;
}

#[tokio::test]
async fn two_hundred_orders_for_the_last_fifty_units_sell_exactly_fifty() {
    let stack = Stack::start().await;
    let last = product(&stack, "LAST", 100, 50).await;
    let ada = customer(&stack, 10_000_000).await;
    let placing = (0..200).map(|_| {
        let (stack, ada, last) = (&stack, ada.clone(), last.clone());
        async move { place(stack, &ada, json!([{"sku": last, "quantity": 1}])).await }
    });
    let orders = join_all(placing).await;

    let mut confirmed = 0;
    for order in &orders {
        let settled = settled(&stack, order).await;
        match settled["status"].as_str() {
            Some("CONFIRMED") => confirmed += 1,
            Some("REJECTED") => assert_eq!(settled["reason"], "OUT_OF_STOCK"),
            other => panic!("order {order} ended {other:?}"),
        }
    }
    assert_eq!(confirmed, 50);
    let product = stack
        .eventually("/api/products/LAST", |p| p["reserved"] == 50)
        .await;
    assert_eq!(product["available"], 0);
    assert_eq!(product["on_hand"], 50);
    stack.stop().await;
}

#[tokio::test]
async fn one_idempotency_key_sent_three_times_at_once_places_one_order() {
    let stack = Stack::start().await;
    let pen = product(&stack, "PEN", 100, 10).await;
    let ada = customer(&stack, 100_000).await;
    let body = json!({"customer_id": ada, "lines": [{"sku": pen, "quantity": 1}]});
    let send = || {
        stack
            .client
            .post(stack.url("/api/orders"))
            .header("idempotency-key", "order-once")
            .json(&body)
            .send()
    };
    let answers = join_all([send(), send(), send()]).await;
    let mut ids = Vec::new();
    for answer in answers {
        let answer = answer.expect("gateway answers");
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        let body: Value = answer.json().await.expect("json");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same order");
    assert_eq!(stack.count_events("orders", "OrderPlaced").await, 1);
    stack.stop().await;
}

/// Every read-model table and every event store, as text, to compare whole.
async fn snapshot(stack: &Stack) -> Vec<String> {
    let mut rows = Vec::new();
    for service in ["inventory", "customers", "orders", "payments"] {
        let events: Vec<String> = sqlx::query_scalar(
            "SELECT aggregate_type || ':' || aggregate_id || ':' || sequence || ':' || event_type
               FROM events ORDER BY 1",
        )
        .fetch_all(&stack.db(service).pool)
        .await
        .expect("read events");
        rows.extend(events);
    }
    for table in [
        "products",
        "orders",
        "order_lines",
        "customers",
        "payments",
        "notifications",
    ] {
        let sql = format!("SELECT t::text FROM {table} t ORDER BY 1");
        let table_rows: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&stack.db("read_models").pool)
            .await
            .expect("read table");
        rows.push(format!("{table}: {} rows", table_rows.len()));
        rows.extend(table_rows);
    }
    rows
}

#[tokio::test]
async fn delivering_every_stream_again_changes_nothing() {
    let stack = Stack::start().await;
    let pen = product(&stack, "PEN", 100, 10).await;
    let rich = customer(&stack, 100_000).await;
    let poor = customer(&stack, 50).await;
    let shipped = place(&stack, &rich, json!([{"sku": pen, "quantity": 2}])).await;
    let cancelled = place(&stack, &rich, json!([{"sku": pen, "quantity": 1}])).await;
    let declined = place(&stack, &poor, json!([{"sku": pen, "quantity": 1}])).await;
    let too_many = place(&stack, &rich, json!([{"sku": pen, "quantity": 50}])).await;
    for order in [&shipped, &cancelled, &declined, &too_many] {
        settled(&stack, order).await;
    }
    stack
        .post(&format!("/api/orders/{shipped}/ship"), json!({}))
        .await;
    stack
        .post(&format!("/api/orders/{cancelled}/cancel"), json!({}))
        .await;
    stack
        .eventually(&format!("/api/payments/{shipped}"), |p| {
            p["status"] == "CAPTURED"
        })
        .await;
    stack
        .eventually(&format!("/api/payments/{cancelled}"), |p| {
            p["status"] == "VOIDED"
        })
        .await;
    stack.wait_until_consumers_are_idle().await;
    let before = snapshot(&stack).await;

    // Every stream is delivered again from its start. The saga reactions also lose
    // their skip-guard, so they really run twice and must be idempotent by
    // aggregate state; the projections keep theirs, as in production.
    stack.forget_stream_positions().await;
    for service in ["inventory", "customers", "orders", "payments"] {
        sqlx::query("DELETE FROM consumer_offsets")
            .execute(&stack.db(service).pool)
            .await
            .expect("forget saga offsets");
    }
    let stack = stack.restart().await;
    stack.wait_until_consumers_are_idle().await;
    let after = snapshot(&stack).await;
    assert_eq!(before, after);
    stack.stop().await;
}

#[tokio::test]
async fn the_orders_role_cannot_read_the_inventory_event_store() {
    use platform::db::{provision, INVENTORY_DB, ORDERS_DB, READ_MODEL_DB};
    use sqlx::Connection;
    let server = platform::testing::server_options();
    for spec in [INVENTORY_DB, ORDERS_DB, READ_MODEL_DB] {
        provision(&server, &spec).await.expect("provision");
    }
    let as_orders = server
        .clone()
        .username(ORDERS_DB.owner)
        .database(INVENTORY_DB.name);
    let refused = sqlx::PgConnection::connect_with(&as_orders).await;
    let error = refused.expect_err("the orders role is refused");
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501"),
        "{error}"
    );

    let own = server
        .clone()
        .username(ORDERS_DB.owner)
        .database(ORDERS_DB.name);
    sqlx::PgConnection::connect_with(&own)
        .await
        .expect("the orders role reaches its own database");

    let reader = server
        .clone()
        .username("catalog")
        .database(READ_MODEL_DB.name);
    let mut conn = sqlx::PgConnection::connect_with(&reader)
        .await
        .expect("reader connects");
    let write = sqlx::query("CREATE TABLE not_allowed (id int)")
        .execute(&mut conn)
        .await;
    assert!(write.is_err(), "the catalog role is read-only");
}

#[tokio::test]
async fn the_request_id_of_the_order_is_the_correlation_id_of_every_saga_event() {
    let stack = Stack::start().await;
    let pen = product(&stack, "PEN", 100, 10).await;
    let ada = customer(&stack, 100_000).await;
    let answer = stack
        .client
        .post(stack.url("/api/orders"))
        .header("x-request-id", "trace-me-1")
        .json(&json!({"customer_id": ada, "lines": [{"sku": pen, "quantity": 1}]}))
        .send()
        .await
        .expect("gateway answers");
    let order: Value = answer.json().await.expect("json");
    let order = order["id"].as_str().expect("id").to_owned();
    assert_eq!(settled(&stack, &order).await["status"], "CONFIRMED");
    stack
        .eventually(&format!("/api/payments/{order}"), |p| {
            p["status"] == "AUTHORIZED"
        })
        .await;

    let expected = [
        (
            "orders",
            vec![
                "OrderConfirmed",
                "OrderLineReserved",
                "OrderPlaced",
                "OrderStockReserved",
            ],
        ),
        ("inventory", vec!["StockReserved"]),
        ("payments", vec!["CreditReserved", "PaymentAuthorized"]),
    ];
    for (service, types) in expected {
        let traced: Vec<String> = sqlx::query_scalar(
            "SELECT event_type FROM events WHERE metadata->>'correlation_id' = 'trace-me-1'
              ORDER BY event_type",
        )
        .fetch_all(&stack.db(service).pool)
        .await
        .expect("read events");
        assert_eq!(traced, types, "{service}");
    }
    stack.stop().await;
}

//! Zero-downtime rebuilds on the whole stack: a rebuilt read model equals the live
//! one, queries keep answering while it is built, and a worker that crashes
//! mid-rebuild resumes it.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

/// Longest wait for a rebuild or a catch-up on this 2-core machine.
const WAIT: Duration = Duration::from_secs(600);

/// Each test here runs a whole stack and rebuilds under load, enough to keep both
/// cores of the CI machine busy; side by side, their NATS and PostgreSQL requests
/// time out. They take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every table of every projection, in a fixed order.
fn all_tables() -> Vec<&'static str> {
    projections::app::PROJECTIONS
        .iter()
        .flat_map(|projection| projection.tables.iter().copied())
        .collect()
}

/// Every row of a table as JSON, ordered by its primary key.
async fn rows(stack: &Stack, table: &str) -> Value {
    let pool = &stack.db("read_models").pool;
    let key: String = sqlx::query_scalar(
        "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
           FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .expect("primary key");
    let sql = format!("SELECT coalesce(json_agg(t ORDER BY {key}), '[]') FROM (SELECT * FROM {table} ORDER BY {key}) t");
    sqlx::query_scalar(&sql)
        .fetch_one(pool)
        .await
        .expect("rows")
}

/// The rows of the given tables, and the indexes and constraints of every read
/// model table, which a switch must keep as they were.
async fn snapshot(stack: &Stack, tables: &[&str]) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for table in tables {
        all.push((table.to_string(), rows(stack, table).await));
    }
    let pool = &stack.db("read_models").pool;
    let schema: Value = sqlx::query_scalar(
        "SELECT json_agg(d ORDER BY d) FROM (
            SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'public'
            UNION ALL
            SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
              FROM pg_constraint WHERE connamespace = 'public'::regnamespace) s",
    )
    .fetch_one(pool)
    .await
    .expect("schema");
    all.push(("schema".to_owned(), schema));
    all
}

/// Starts a rebuild and returns the version it builds.
async fn start_rebuild(stack: &Stack, name: &str) -> i64 {
    let (status, body) = stack
        .post(&format!("/api/admin/projections/{name}/rebuild"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["name"], name);
    body["target_version"].as_i64().expect("target version")
}

/// Polls the projection until `done` holds, for at most [`WAIT`].
async fn projection_until(stack: &Stack, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = stack.get(&format!("/api/admin/projections/{name}")).await;
        if status == StatusCode::OK && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the rebuild to `target` has switched.
async fn switched(stack: &Stack, name: &str, target: i64) -> Value {
    projection_until(stack, name, |p| {
        p["version"] == target && p["rebuild"].is_null()
    })
    .await
}

/// Whether nothing of a rebuild is left: no schema, no consumer rows.
async fn assert_no_rebuild_leftovers(stack: &Stack) {
    let pool = &stack.db("read_models").pool;
    let schemas: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
            .fetch_one(pool)
            .await
            .expect("schemas");
    assert_eq!(schemas, 0, "a rebuild schema is left");
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM consumer_offsets WHERE consumer LIKE '%-rebuild')
              + (SELECT count(*) FROM consumer_checkpoints WHERE consumer LIKE '%-rebuild')",
    )
    .fetch_one(pool)
    .await
    .expect("consumer rows");
    assert_eq!(rows, 0, "rows of the rebuild consumers are left");
}

async fn post_created(stack: &Stack, path: &str, body: Value) -> Value {
    let (status, answer) = stack.post(path, body).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// Orders that end in every status, through the saga.
async fn saga_traffic(stack: &Stack) {
    for (sku, stock) in [("MUG", 10), ("PEN", 2)] {
        let product = json!({"sku": sku, "name": sku, "price_cents": 1250, "initial_stock": stock});
        post_created(stack, "/api/products", product).await;
    }
    let mut customers = Vec::new();
    for credit in [100_000, 1_000] {
        let customer =
            json!({"name": "Ada", "email": "ada@example.com", "credit_limit_cents": credit});
        let body = post_created(stack, "/api/customers", customer).await;
        customers.push(body["id"].as_str().expect("id").to_owned());
    }
    let (rich, poor) = (&customers[0], &customers[1]);
    let mut orders = Vec::new();
    for (customer, sku, quantity) in [
        (rich, "MUG", 2),
        (rich, "MUG", 1),
        (rich, "MUG", 1),
        (poor, "MUG", 3),
        (rich, "PEN", 5),
    ] {
        let order = json!({"customer_id": customer, "lines": [{"sku": sku, "quantity": quantity}]});
        let body = post_created(stack, "/api/orders", order).await;
        orders.push(body["id"].as_str().expect("id").to_owned());
    }
    for order in &orders {
        stack
            .eventually(&format!("/api/orders/{order}"), |o| {
                o["status"] != "PENDING"
            })
            .await;
    }
    post_created(stack, &format!("/api/orders/{}/ship", orders[0]), json!({})).await;
    post_created(
        stack,
        &format!("/api/orders/{}/cancel", orders[1]),
        json!({}),
    )
    .await;
    stack
        .eventually(&format!("/api/orders/{}", orders[1]), |o| {
            o["status"] == "CANCELLED"
        })
        .await;
    stack.wait_until_consumers_are_idle().await;
}

#[tokio::test]
async fn rebuilding_every_projection_after_saga_traffic_gives_the_same_read_models() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::start().await;
    saga_traffic(&stack).await;
    let pool = &stack.db("read_models").pool;
    // A reader role's grant has to survive the switch.
    sqlx::query("GRANT SELECT ON orders TO PUBLIC")
        .execute(pool)
        .await
        .expect("grant");
    let tables = all_tables();
    let before = snapshot(&stack, &tables).await;

    let mut targets = Vec::new();
    for projection in projections::app::PROJECTIONS {
        targets.push((
            projection.name,
            start_rebuild(&stack, projection.name).await,
        ));
    }
    for (name, target) in &targets {
        assert_eq!(*target, 2, "{name}");
        switched(&stack, name, *target).await;
    }

    assert_eq!(snapshot(&stack, &tables).await, before);
    let readable: bool =
        sqlx::query_scalar("SELECT has_table_privilege('public', 'orders', 'SELECT')")
            .fetch_one(pool)
            .await
            .expect("privilege");
    assert!(readable, "the grant on orders was lost");
    let options: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT reloptions FROM pg_class WHERE oid = 'public.order_lines'::regclass",
    )
    .fetch_one(pool)
    .await
    .expect("storage parameters");
    assert_eq!(
        options,
        Some(vec!["fillfactor=60".to_owned()]),
        "the rebuilt order_lines lost its fillfactor"
    );
    assert_no_rebuild_leftovers(&stack).await;
    let list = stack.eventually("/api/admin/projections", |_| true).await;
    for projection in list["items"].as_array().expect("items") {
        assert_eq!(projection["status"], "LIVE", "{projection}");
        assert_eq!(projection["version"], 2, "{projection}");
    }
    let (status, _) = stack
        .post("/api/admin/projections/nothing/rebuild", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, openapi) = stack.get("/api/openapi.json").await;
    assert!(openapi["paths"]["/api/admin/projections/{name}/rebuild"]["post"].is_object());

    // The new version keeps following its streams after the switch.
    let customer = json!({"name": "Bo", "email": "bo@example.com", "credit_limit_cents": 50_000});
    let bo = post_created(&stack, "/api/customers", customer).await;
    let order = json!({"customer_id": bo["id"], "lines": [{"sku": "MUG", "quantity": 1}]});
    let order = post_created(&stack, "/api/orders", order).await;
    stack
        .eventually(
            &format!("/api/orders/{}", order["id"].as_str().unwrap()),
            |o| o["status"] == "CONFIRMED",
        )
        .await;
    stack.stop().await;
}

/// A recorded order's id: UUID-shaped, and newest first by number.
fn order_id(number: usize) -> String {
    format!("0190a000-0000-7000-8000-{number:012x}")
}

fn customer_id(number: usize) -> String {
    format!("0190b000-0000-7000-8000-{number:012x}")
}

/// The five events of one order that is placed, reserved, confirmed and shipped,
/// as the orders relay would publish them.
fn order_events(number: usize) -> Vec<(String, &'static str, Value)> {
    let (id, customer) = (order_id(number), customer_id(number % 100));
    let sku = format!("SKU-{}", number % 50);
    let quantity = 1 + number % 3;
    let total = 250 * quantity;
    vec![
        (
            id.clone(),
            "OrderPlaced",
            json!({"order_id": id, "customer_id": customer,
            "lines": [{"sku": sku, "quantity": quantity}]}),
        ),
        (
            id.clone(),
            "OrderLineReserved",
            json!({"sku": sku, "quantity": quantity,
            "unit_price_cents": 250}),
        ),
        (
            id.clone(),
            "OrderStockReserved",
            json!({"customer_id": customer, "total_cents": total}),
        ),
        (id.clone(), "OrderConfirmed", json!({"total_cents": total})),
        (id, "OrderShipped", json!({})),
    ]
}

/// Publishes `orders` recorded orders of five events each straight to the stack's
/// ORDERS stream, with `Nats-Msg-Id` and pipelined acks; returns the event count.
async fn seed_orders(stack: &Stack, orders: usize) -> u64 {
    let client = async_nats::connect(platform::testing::nats_url())
        .await
        .expect("nats");
    let jetstream = async_nats::jetstream::new(client);
    let stream = platform::nats::StreamSpec::in_namespace(&stack.namespace, "orders");
    platform::nats::ensure_stream(&jetstream, &stream)
        .await
        .expect("stream");
    let mut published = 0;
    let mut acks = Vec::new();
    for number in 0..orders {
        for (sequence, (id, event_type, payload)) in order_events(number).into_iter().enumerate() {
            let sequence = sequence + 1;
            let event_id = format!("orders:Order:{id}:{sequence}");
            let envelope = json!({
                "event_id": event_id, "service": "orders", "aggregate_type": "Order",
                "aggregate_id": id, "sequence": sequence, "global_position": published + 1,
                "event_type": event_type, "event_version": "1.0", "payload": payload,
                "metadata": {"correlation_id": format!("seed-{number}")},
                "recorded_at": format!("2026-01-01T00:00:{:02}.{:06}Z", sequence, number),
            });
            let subject = format!("{}.Order.{id}.{event_type}", stream.subject_prefix);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event_id.as_str());
            let body = serde_json::to_vec(&envelope).expect("json").into();
            let ack = jetstream
                .publish_with_headers(subject, headers, body)
                .await
                .expect("publish");
            acks.push(ack);
            published += 1;
            if acks.len() == 1_000 {
                for ack in acks.drain(..) {
                    ack.await.expect("stored");
                }
            }
        }
    }
    for ack in acks {
        ack.await.expect("stored");
    }
    published
}

/// Waits until the live orders projection has applied every seeded event.
async fn orders_caught_up(stack: &Stack, events: u64) {
    projection_until(stack, "orders", |p| {
        p["sources"][0]["position"] == events && p["sources"][0]["lag"] == 0
    })
    .await;
}

/// The answers the query API gives for a sample of orders and for the list.
fn sample_paths(orders: usize) -> Vec<String> {
    let mut paths: Vec<String> = (0..orders)
        .step_by(orders / 20)
        .map(|number| format!("/api/orders/{}", order_id(number)))
        .collect();
    paths.push("/api/orders?limit=50".to_owned());
    paths.push(format!(
        "/api/orders?customer_id={}&limit=10",
        customer_id(7)
    ));
    paths
}

async fn answers(stack: &Stack, paths: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for path in paths {
        let (status, body) = stack.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        all.push(body);
    }
    all
}

#[tokio::test]
async fn queries_keep_answering_while_fifty_thousand_orders_events_are_rebuilt() {
    let _turn = ONE_AT_A_TIME.lock().await;
    const ORDERS: usize = 10_000;
    let stack = Arc::new(Stack::start().await);
    let events = seed_orders(&stack, ORDERS).await;
    assert!(events >= 50_000);
    orders_caught_up(&stack, events).await;
    let paths = sample_paths(ORDERS);
    let expected = answers(&stack, &paths).await;
    let tables = ["orders", "order_lines"];
    let before = snapshot(&stack, &tables).await;

    let querying = Arc::new(AtomicBool::new(true));
    let reader = tokio::spawn({
        let (stack, querying, paths) = (stack.clone(), querying.clone(), paths.clone());
        async move {
            let (mut answered, mut wrong) = (0_u64, Vec::new());
            while querying.load(Ordering::Relaxed) {
                for (path, expected) in paths.iter().zip(&expected) {
                    let (status, body) = stack.get(path).await;
                    if status != StatusCode::OK || &body != expected {
                        wrong.push(format!("{path}: {status} {body}"));
                    }
                    answered += 1;
                }
            }
            (answered, wrong)
        }
    });
    let started = Instant::now();
    let target = start_rebuild(&stack, "orders").await;
    let (status, body) = stack
        .post("/api/admin/projections/orders/rebuild", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a second rebuild: {body}");
    let rebuilding = projection_until(&stack, "orders", |p| {
        p["status"] == "REBUILDING" && p["rebuild"]["sources"][0]["position"].as_u64() > Some(0)
    })
    .await;
    assert_eq!(rebuilding["version"], 1);
    assert_eq!(rebuilding["rebuild"]["target_version"], target);
    switched(&stack, "orders", target).await;
    let elapsed = started.elapsed();
    // A few more rounds of queries on the new version.
    tokio::time::sleep(Duration::from_millis(500)).await;
    querying.store(false, Ordering::Relaxed);
    let (answered, wrong) = reader.await.expect("reader");

    eprintln!(
        "rebuilt {events} events in {:.1} s: {:.0} events/s; {answered} queries answered meanwhile",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong answers, first: {}",
        wrong.len(),
        wrong[0]
    );
    assert!(answered > paths.len() as u64, "the reader ran");
    assert_eq!(snapshot(&stack, &tables).await, before);
    assert_no_rebuild_leftovers(&stack).await;
    Arc::into_inner(stack).expect("reader is done").stop().await;
}

#[tokio::test]
async fn a_rebuild_interrupted_by_a_crash_resumes_and_equals_live() {
    let _turn = ONE_AT_A_TIME.lock().await;
    const ORDERS: usize = 4_000;
    let mut stack = Stack::start().await;
    let events = seed_orders(&stack, ORDERS).await;
    orders_caught_up(&stack, events).await;
    let paths = sample_paths(ORDERS);
    let expected = answers(&stack, &paths).await;
    let tables = ["orders", "order_lines"];
    let before = snapshot(&stack, &tables).await;
    let pool = stack.db("read_models").pool.clone();
    let rebuilt = || async {
        let position: Option<i64> = sqlx::query_scalar(
            "SELECT stream_seq FROM consumer_checkpoints WHERE consumer = 'orders-rebuild'",
        )
        .fetch_optional(&pool)
        .await
        .expect("checkpoint");
        position.unwrap_or(0)
    };

    let target = start_rebuild(&stack, "orders").await;
    let deadline = Instant::now() + WAIT;
    while rebuilt().await == 0 {
        assert!(Instant::now() < deadline, "the rebuild did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stack.crash_projection_worker().await;

    let in_progress: (i32, Option<i32>) = sqlx::query_as(
        "SELECT version, rebuild_target FROM projection_versions WHERE name = 'orders'",
    )
    .fetch_one(&pool)
    .await
    .expect("versions");
    assert_eq!(in_progress, (1, Some(target as i32)), "crashed mid-rebuild");
    let at_crash = rebuilt().await;
    assert!(
        at_crash < events as i64,
        "crashed before the end: {at_crash}"
    );
    assert_eq!(
        answers(&stack, &paths).await,
        expected,
        "the live version serves"
    );

    stack.start_projection_worker().await;
    switched(&stack, "orders", target).await;

    assert_eq!(snapshot(&stack, &tables).await, before);
    assert_eq!(answers(&stack, &paths).await, expected);
    assert_no_rebuild_leftovers(&stack).await;
    stack.stop().await;
}

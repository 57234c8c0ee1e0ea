//! `shop relay republish` on the whole stack: the orders stream is lost while the
//! saga runs, the relay republishes the log through the gateway's admin route, the
//! stream ends with exactly one message per event in log order (twice over), and
//! every consumer downstream converges.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Stack;

async fn place_confirmed(stack: &Stack, customer_id: &str) -> String {
    let (status, body) = stack
        .post(
            "/api/orders",
            json!({"customer_id": customer_id, "lines": [{"sku": "MUG", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order = body["id"].as_str().expect("order id").to_owned();
    stack
        .eventually(&format!("/api/orders/{order}"), |o| {
            o["status"] == "CONFIRMED"
        })
        .await;
    order
}

/// Requests a republish of the orders stream and polls it until it is done.
async fn republish_orders(stack: &Stack) -> Value {
    let path = "/api/admin/relay/orders/republish";
    let (status, body) = stack.post(path, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = stack.get(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "DONE" {
            return body;
        }
        assert!(Instant::now() < deadline, "republish not done: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `Nats-Msg-Id` of every message of the orders stream, in stream order.
async fn orders_stream_ids(stack: &Stack) -> Vec<String> {
    let client = async_nats::connect(platform::testing::nats_url())
        .await
        .expect("nats");
    let jetstream = async_nats::jetstream::new(client);
    let spec = platform::nats::StreamSpec::in_namespace(&stack.namespace, "orders");
    let mut stream = jetstream.get_stream(&spec.name).await.expect("stream");
    let count = stream.info().await.expect("stream info").state.messages;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut ids = Vec::new();
    while (ids.len() as u64) < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream delivers")
            .expect("a message")
            .expect("a readable message");
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .expect("Nats-Msg-Id")
            .to_string();
        ids.push(id);
    }
    ids
}

/// The event ids of the orders log in relay order.
async fn orders_log_ids(stack: &Stack) -> Vec<String> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence FROM events
          ORDER BY transaction_id, global_position",
    )
    .fetch_all(&stack.db("orders").pool)
    .await
    .expect("read the log");
    rows.into_iter()
        .map(|(kind, id, sequence)| {
            platform::Envelope::event_id_for("orders", &kind, &id, sequence)
        })
        .collect()
}

#[tokio::test]
async fn a_lost_orders_stream_is_republished_once_in_order_and_consumers_converge() {
    let stack = Stack::start().await;
    let (status, body) = stack
        .post(
            "/api/products",
            json!({"sku": "MUG", "name": "Mug", "price_cents": 1000, "initial_stock": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = stack
        .post(
            "/api/customers",
            json!({"name": "Ada", "email": "ada@example.com", "credit_limit_cents": 100_000}),
        )
        .await;
    let ada = body["id"].as_str().expect("customer id").to_owned();
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(place_confirmed(&stack, &ada).await);
    }
    stack.wait_until_consumers_are_idle().await;

    let client = async_nats::connect(platform::testing::nats_url())
        .await
        .expect("nats");
    let spec = platform::nats::StreamSpec::in_namespace(&stack.namespace, "orders");
    async_nats::jetstream::new(client)
        .delete_stream(&spec.name)
        .await
        .expect("delete the orders stream");
    // The relay creates the stream again with only what comes next.
    orders.push(place_confirmed(&stack, &ada).await);

    let (status, _) = stack
        .post("/api/admin/relay/shipping/republish", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stored = stack.stored_events("orders").await;
    let first = republish_orders(&stack).await;
    assert_eq!(first["recreated"], true, "{first}");
    assert!(first["total"].as_i64() >= Some(stored), "{first}");
    assert_eq!(first["published"], first["total"]);
    assert_eq!(
        orders_stream_ids(&stack).await,
        orders_log_ids(&stack).await
    );

    let second = republish_orders(&stack).await;
    assert_eq!(second["recreated"], false, "{second}");
    assert_eq!(
        orders_stream_ids(&stack).await,
        orders_log_ids(&stack).await
    );

    // Consumers follow the new stream, skip what they applied, and take new events.
    orders.push(place_confirmed(&stack, &ada).await);
    stack.wait_until_consumers_are_idle().await;
    assert_eq!(
        orders_stream_ids(&stack).await,
        orders_log_ids(&stack).await
    );
    let count = orders.len();
    let confirmed = format!("/api/orders?customer_id={ada}&status=CONFIRMED");
    stack
        .eventually(&confirmed, |page| {
            page["items"].as_array().map(Vec::len) == Some(count)
        })
        .await;
    stack
        .eventually(&format!("/api/customers/{ada}"), |c| {
            c["orders_count"] == count && c["lifetime_spend_cents"] == count * 1000
        })
        .await;
    stack
        .eventually("/api/products/MUG", |p| p["reserved"] == count)
        .await;
    stack.stop().await;
}

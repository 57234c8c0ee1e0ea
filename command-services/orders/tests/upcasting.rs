//! An event store that holds `OrderCancelled` events written at version 1.0, before
//! `was` was renamed `cancelled_from`: orders still load from it, take commands,
//! travel back in time, and write new events at version 2.0.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::orders::{Order, OrderCommand, OrderError, OrderStatus};
use orders::{router, AppState};
use platform::db::{EVENT_STORE_MIGRATIONS, READ_MODEL_MIGRATIONS};
use platform::event_store::{AggregateStore, CommandContext, CommandError};
use platform::testing::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const CUSTOMER: &str = "0190a0f6-5b1c-7c3e-8f00-000000000001";

/// An event store seeded with raw rows, and the orders store and router over it.
struct SeededStore {
    db: TestDb,
    orders: Arc<AggregateStore<Order>>,
}

impl SeededStore {
    async fn new() -> Self {
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS, &READ_MODEL_MIGRATIONS])
            .await
            .expect("test database");
        let orders = Arc::new(AggregateStore::new("orders", db.pool.clone(), ()));
        Self { db, orders }
    }

    /// Inserts one event row as an older version of the service wrote it.
    async fn insert(
        &self,
        order_id: Uuid,
        sequence: i64,
        event_type: &str,
        version: &str,
        fields: Value,
    ) {
        sqlx::query(
            "INSERT INTO events
               (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('Order', $1, $2, $3, $4, $5, $6)",
        )
        .bind(order_id.to_string())
        .bind(sequence)
        .bind(event_type)
        .bind(version)
        .bind(json!({ event_type: fields }))
        .bind(json!({"correlation_id": "seed", "causation_id": "seed"}))
        .execute(&self.db.pool)
        .await
        .expect("insert a seeded event");
    }

    /// An order placed and then cancelled from PENDING, both written at version 1.0.
    async fn cancelled_at_version_one(&self) -> Uuid {
        let order_id = Uuid::now_v7();
        self.placed_at_version_one(order_id).await;
        let cancelled = json!({"reason": "changed my mind", "was": "PENDING"});
        self.insert(order_id, 2, "OrderCancelled", "1.0", cancelled)
            .await;
        order_id
    }

    async fn placed_at_version_one(&self, order_id: Uuid) {
        let placed = json!({
            "order_id": order_id,
            "customer_id": CUSTOMER,
            "lines": [{"sku": "MUG-1", "quantity": 2}],
        });
        self.insert(order_id, 1, "OrderPlaced", "1.0", placed).await;
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let state = AppState {
            orders: self.orders.clone(),
        };
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = router(state).oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str) -> StatusCode {
        let state = AppState {
            orders: self.orders.clone(),
        };
        let request = Request::post(path).body(Body::empty()).expect("request");
        router(state)
            .oneshot(request)
            .await
            .expect("response")
            .status()
    }
}

#[tokio::test]
async fn an_order_cancelled_at_version_one_loads_as_cancelled_and_refuses_to_be_cancelled_again() {
    let store = SeededStore::new().await;
    let order_id = store.cancelled_at_version_one().await;
    let outcome = store
        .orders
        .execute(
            &order_id.to_string(),
            OrderCommand::Cancel { reason: None },
            &CommandContext::default(),
        )
        .await;
    match outcome {
        Err(CommandError::Rejected(OrderError::CannotCancel { status })) => {
            assert_eq!(status, OrderStatus::Cancelled);
        }
        other => panic!("expected CannotCancel from CANCELLED, got {other:?}"),
    }
    let (order, version) = store
        .orders
        .load(&order_id.to_string())
        .await
        .expect("load");
    assert_eq!(order.status(), Some(OrderStatus::Cancelled));
    assert_eq!(version, 2);
}

#[tokio::test]
async fn shipping_an_order_cancelled_at_version_one_is_409_not_a_server_error() {
    let store = SeededStore::new().await;
    let order_id = store.cancelled_at_version_one().await;
    let status = store.post(&format!("/api/orders/{order_id}/ship")).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn time_travel_folds_version_one_events_into_the_state() {
    let store = SeededStore::new().await;
    let order_id = store.cancelled_at_version_one().await;
    let (status, body) = store.get(&format!("/api/orders/{order_id}/state")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    assert_eq!(body["state"]["status"], "CANCELLED");
    assert_eq!(body["state"]["cancel_reason"], "changed my mind");
    let (_, before) = store
        .get(&format!("/api/orders/{order_id}/state?version=1"))
        .await;
    assert_eq!(before["state"]["status"], "PENDING");
}

#[tokio::test]
async fn the_event_stream_shows_each_event_as_it_was_stored() {
    let store = SeededStore::new().await;
    let order_id = store.cancelled_at_version_one().await;
    let (status, body) = store.get(&format!("/api/orders/{order_id}/events")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cancelled = &body["events"][1];
    assert_eq!(cancelled["event_version"], "1.0");
    assert_eq!(
        cancelled["payload"],
        json!({"reason": "changed my mind", "was": "PENDING"})
    );
}

#[tokio::test]
async fn a_command_on_a_version_one_history_appends_its_event_at_version_two() {
    let store = SeededStore::new().await;
    let order_id = Uuid::now_v7();
    store.placed_at_version_one(order_id).await;
    let status = store.post(&format!("/api/orders/{order_id}/cancel")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (version, payload): (String, Value) = sqlx::query_as(
        "SELECT event_version, payload FROM events WHERE aggregate_id = $1 AND sequence = 2",
    )
    .bind(order_id.to_string())
    .fetch_one(&store.db.pool)
    .await
    .expect("the cancellation row");
    assert_eq!(version, "2.0");
    assert_eq!(
        payload,
        json!({"OrderCancelled": {"reason": null, "cancelled_from": "PENDING"}})
    );
}

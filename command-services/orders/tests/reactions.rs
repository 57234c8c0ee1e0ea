//! The order saga's reactions against real PostgreSQL and NATS: inventory's and
//! payments' events, published to their streams, move orders along.

mod saga;

use std::sync::Arc;

use domain::inventory::{ProductEvent, RejectionReason};
use domain::payments::{DeclineReason, PaymentEvent};
use orders::reactions::{InventoryReactions, PaymentReactions};
use platform::consumer::Handler;
use platform::event_store::AggregateStore;
use saga::{has, types, Saga, CUSTOMER};
use serde_json::json;
use uuid::Uuid;

fn reserved(order_id: &str, quantity: u64, unit_price_cents: i64) -> ProductEvent {
    ProductEvent::StockReserved {
        order_id: order_id.parse().expect("order id"),
        quantity,
        unit_price_cents,
    }
}

fn authorized(order_id: &str, amount_cents: i64) -> PaymentEvent {
    PaymentEvent::PaymentAuthorized {
        order_id: order_id.parse().expect("order id"),
        customer_id: CUSTOMER.parse().expect("customer id"),
        amount_cents,
    }
}

/// Places a two-line order and has inventory reserve both lines (3350 cents).
/// Returns once the order recorded its total: payments answers only after that,
/// and no order holds between the INVENTORY and PAYMENTS streams.
async fn place_and_reserve(saga: &mut Saga, request_id: &str) -> String {
    let id = saga.place(&[("MUG-1", 2), ("TEA-7", 3)], request_id).await;
    let cause = Some(request_id);
    saga.product("MUG-1", reserved(&id, 2, 1000), cause).await;
    saga.product("TEA-7", reserved(&id, 3, 450), cause).await;
    saga.wait_for(&id, |events| has(events, "OrderStockReserved"))
        .await;
    id
}

#[tokio::test]
async fn reserving_every_line_then_authorizing_payment_confirms_the_order() {
    let mut saga = Saga::start().await;
    let id = place_and_reserve(&mut saga, "req-confirm").await;
    let events = saga
        .wait_for(&id, |events| has(events, "OrderStockReserved"))
        .await;
    assert_eq!(
        types(&events),
        [
            "OrderPlaced",
            "OrderLineReserved",
            "OrderLineReserved",
            "OrderStockReserved"
        ]
    );
    assert_eq!(
        events[1]["payload"],
        json!({"sku": "MUG-1", "quantity": 2, "unit_price_cents": 1000})
    );
    assert_eq!(
        events[3]["payload"],
        json!({"customer_id": CUSTOMER, "total_cents": 3350})
    );
    let metadata = &events[2]["metadata"];
    assert_eq!(metadata["correlation_id"], "req-confirm");
    assert_eq!(metadata["causation_id"], "inventory:Product:TEA-7:2");
    assert_eq!(
        events[3]["metadata"], *metadata,
        "recorded by the same answer"
    );

    saga.payment(&id, authorized(&id, 3350), Some("req-confirm"))
        .await;
    let events = saga
        .wait_for(&id, |events| has(events, "OrderConfirmed"))
        .await;
    let confirmed = &events[4];
    assert_eq!(confirmed["event_type"], "OrderConfirmed");
    assert_eq!(confirmed["payload"], json!({"total_cents": 3350}));
    assert_eq!(
        confirmed["metadata"]["causation_id"],
        format!("payments:Payment:{id}:1")
    );
    assert_eq!(confirmed["metadata"]["correlation_id"], "req-confirm");
    saga.stop().await;
}

#[tokio::test]
async fn a_rejected_line_rejects_the_order_as_out_of_stock() {
    let mut saga = Saga::start().await;
    let id = saga
        .place(&[("MUG-1", 2), ("TEA-7", 30)], "req-reject")
        .await;
    saga.product("MUG-1", reserved(&id, 2, 1000), Some("req-reject"))
        .await;
    let rejection = ProductEvent::StockReservationRejected {
        order_id: id.parse().expect("order id"),
        quantity: 30,
        available: 4,
        reason: RejectionReason::OutOfStock,
    };
    // Without a correlation id, the event itself starts the chain.
    let envelope = saga.product("TEA-7", rejection, None).await;
    let events = saga
        .wait_for(&id, |events| has(events, "OrderRejected"))
        .await;
    assert_eq!(
        types(&events),
        ["OrderPlaced", "OrderLineReserved", "OrderRejected"]
    );
    assert_eq!(events[2]["payload"], json!({"reason": "OUT_OF_STOCK"}));
    assert_eq!(events[2]["metadata"]["correlation_id"], envelope.event_id);
    assert_eq!(events[2]["metadata"]["causation_id"], envelope.event_id);
    saga.stop().await;
}

#[tokio::test]
async fn a_declined_payment_rejects_the_order_with_its_reason() {
    let mut saga = Saga::start().await;
    let id = place_and_reserve(&mut saga, "req-decline").await;
    let declined = PaymentEvent::PaymentDeclined {
        order_id: id.parse().expect("order id"),
        customer_id: CUSTOMER.parse().expect("customer id"),
        amount_cents: 3350,
        reason: DeclineReason::InsufficientCredit,
    };
    saga.payment(&id, declined, Some("req-decline")).await;
    let events = saga
        .wait_for(&id, |events| has(events, "OrderRejected"))
        .await;
    assert_eq!(
        types(&events),
        [
            "OrderPlaced",
            "OrderLineReserved",
            "OrderLineReserved",
            "OrderStockReserved",
            "OrderRejected"
        ]
    );
    assert_eq!(
        events[4]["payload"],
        json!({"reason": "INSUFFICIENT_CREDIT"})
    );
    saga.stop().await;
}

#[tokio::test]
async fn answers_for_unknown_orders_or_that_contradict_the_order_are_skipped() {
    let mut saga = Saga::start().await;
    let id = saga.place(&[("MUG-1", 2)], "req-skip").await;
    let ghost = Uuid::now_v7().to_string();
    saga.product("MUG-1", reserved(&ghost, 2, 1000), None).await;
    saga.payment(&ghost, authorized(&ghost, 10), None).await;
    // Five units reserved for a line of two is a fault upstream, not a retry.
    saga.product("MUG-1", reserved(&id, 5, 1000), None).await;
    saga.product("MUG-1", reserved(&id, 2, 1000), None).await;
    let events = saga
        .wait_for(&id, |events| has(events, "OrderStockReserved"))
        .await;
    assert_eq!(
        types(&events),
        ["OrderPlaced", "OrderLineReserved", "OrderStockReserved"]
    );
    assert_eq!(
        events[1]["metadata"]["causation_id"],
        "inventory:Product:MUG-1:4"
    );
    assert!(saga.events(&ghost).await.is_empty(), "no order was made up");
    saga.stop().await;
}

#[tokio::test]
async fn delivering_everything_twice_changes_nothing() {
    let mut saga = Saga::start().await;
    let confirmed = place_and_reserve(&mut saga, "req-twice-1").await;
    saga.payment(&confirmed, authorized(&confirmed, 3350), None)
        .await;
    let rejected = saga.place(&[("MUG-1", 1)], "req-twice-2").await;
    let rejection = ProductEvent::StockReservationRejected {
        order_id: rejected.parse().expect("order id"),
        quantity: 1,
        available: 0,
        reason: RejectionReason::OutOfStock,
    };
    saga.product("MUG-1", rejection, None).await;
    let before = (
        saga.wait_for(&confirmed, |e| has(e, "OrderConfirmed"))
            .await,
        saga.wait_for(&rejected, |e| has(e, "OrderRejected")).await,
    );

    // Redelivered messages, as after a lost ack: the consumers skip them.
    let mut last = std::collections::HashMap::new();
    for (service, envelope) in &saga.published {
        let again = format!("{}:again", envelope.event_id);
        last.insert(*service, saga.send(service, envelope, &again).await);
    }
    saga.wait_until_consumed(InventoryReactions::DURABLE_NAME, last["inventory"])
        .await;
    saga.wait_until_consumed(PaymentReactions::DURABLE_NAME, last["payments"])
        .await;

    // Applied again past the consumers' guard, as after a batch that rolled back
    // once its commands had committed: the orders ignore answers they recorded.
    let store = Arc::new(AggregateStore::new("orders", saga.db.pool.clone(), ()));
    let inventory = InventoryReactions::new(store.clone());
    let payments = PaymentReactions::new(store);
    let mut connection = saga.db.pool.acquire().await.expect("connection");
    for (service, envelope) in &saga.published {
        let handler: &dyn Handler = match *service {
            "inventory" => &inventory,
            _ => &payments,
        };
        handler
            .apply(&mut connection, envelope)
            .await
            .expect("a repeat is no error");
    }

    let after = (saga.events(&confirmed).await, saga.events(&rejected).await);
    assert_eq!(after, before);
    saga.stop().await;
}

#[tokio::test]
async fn a_store_failure_is_returned_so_that_the_batch_is_retried() {
    let db = platform::testing::TestDb::new(&[&platform::db::EVENT_STORE_MIGRATIONS])
        .await
        .expect("database");
    let broken = platform::db::connect(db.options(), 1).await.expect("pool");
    broken.close().await;
    let reactions = InventoryReactions::new(Arc::new(AggregateStore::new("orders", broken, ())));
    let order_id = Uuid::now_v7();
    let envelope = platform::Envelope {
        event_id: "inventory:Product:MUG-1:2".into(),
        service: "inventory".into(),
        aggregate_type: "Product".into(),
        aggregate_id: "MUG-1".into(),
        sequence: 2,
        global_position: 2,
        event_type: "StockReserved".into(),
        event_version: "1.0".into(),
        payload: json!({"order_id": order_id, "quantity": 1, "unit_price_cents": 100}),
        metadata: Default::default(),
        recorded_at: chrono::Utc::now(),
    };
    let mut connection = db.pool.acquire().await.expect("connection");
    let outcome = reactions.apply(&mut connection, &envelope).await;
    assert!(outcome.is_err(), "a store that fails must not look handled");
}

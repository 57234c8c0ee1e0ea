//! Read-model changes against a real PostgreSQL: a batch that applies events
//! announces its aggregates as it commits, and a listener wakes the requests
//! waiting on those aggregates, and only those.

use std::time::Duration;

use async_trait::async_trait;
use platform::changes::{ReadModelChanges, CHANNEL};
use platform::consumer::{apply_batch, ConsumerConfig, Handler};
use platform::db::READ_MODEL_MIGRATIONS;
use platform::testing::{orders_event, test_stream, TestDb};
use platform::Envelope;
use sqlx::postgres::PgListener;
use sqlx::PgConnection;

const WAIT: Duration = Duration::from_secs(10);

/// Applies nothing of its own; the batch's offsets and checkpoint are its writes.
struct Orders;

#[async_trait]
impl Handler for Orders {
    fn name(&self) -> &str {
        "orders"
    }

    async fn apply(&self, _tx: &mut PgConnection, _envelope: &Envelope) -> anyhow::Result<()> {
        Ok(())
    }
}

fn config(announce_changes: bool) -> ConsumerConfig {
    let stream = test_stream("orders");
    let filter = format!("{}.>", stream.subject_prefix);
    ConsumerConfig {
        announce_changes,
        ..ConsumerConfig::new("orders", stream, filter)
    }
}

fn batch() -> Vec<(Envelope, u64)> {
    vec![
        (orders_event("Order", "order-a", 1, "OrderPlaced"), 1),
        (orders_event("Order", "order-b", 1, "OrderPlaced"), 2),
        (orders_event("Order", "order-a", 2, "OrderConfirmed"), 3),
    ]
}

async fn apply(db: &TestDb, config: &ConsumerConfig, batch: &[(Envelope, u64)]) -> u64 {
    let events = batch
        .iter()
        .map(|(envelope, sequence)| (envelope, *sequence));
    apply_batch(&db.pool, &Orders, config, events)
        .await
        .unwrap()
}

/// A listener on the announcements of `db`.
async fn listening(db: &TestDb) -> PgListener {
    let mut listener = PgListener::connect_with(&db.pool).await.unwrap();
    listener.listen(CHANNEL).await.unwrap();
    listener
}

async fn next_payload(listener: &mut PgListener) -> String {
    let notification = tokio::time::timeout(WAIT, listener.recv()).await;
    notification.unwrap().unwrap().payload().to_owned()
}

/// A batch of one event of a third order, after [`batch`].
fn order_c() -> [(Envelope, u64); 1] {
    [(orders_event("Order", "order-c", 1, "OrderPlaced"), 4)]
}

#[tokio::test]
async fn a_batch_announces_its_read_model_and_each_aggregate_it_moved() {
    let db = TestDb::new(&[&READ_MODEL_MIGRATIONS]).await.unwrap();
    let mut listener = listening(&db).await;
    let batch = batch();

    apply(&db, &config(true), &batch).await;
    // Applied again, every event is skipped: nothing changed, nothing is said.
    apply(&db, &config(true), &batch).await;
    apply(&db, &config(true), &order_c()).await;

    assert_eq!(
        next_payload(&mut listener).await,
        "orders\norder-a\norder-b"
    );
    assert_eq!(next_payload(&mut listener).await, "orders\norder-c");
}

#[tokio::test]
async fn a_consumer_that_does_not_announce_says_nothing() {
    let db = TestDb::new(&[&READ_MODEL_MIGRATIONS]).await.unwrap();
    let mut listener = listening(&db).await;

    apply(&db, &config(false), &batch()).await;
    apply(&db, &config(true), &order_c()).await;

    assert_eq!(next_payload(&mut listener).await, "orders\norder-c");
}

#[tokio::test]
async fn an_announced_change_wakes_the_waiters_of_that_aggregate_only() {
    let db = TestDb::new(&[&READ_MODEL_MIGRATIONS]).await.unwrap();
    let changes = ReadModelChanges::listen(db.pool.clone());
    let mut other_order = changes.next_change("orders", "order-z");
    let mut other_model = changes.next_change("payments", "order-a");

    // The listener connects in the background: announce until it hears.
    let mut sequence = 0;
    let heard = tokio::time::timeout(WAIT, async {
        loop {
            let waiting = changes.next_change("orders", "order-a");
            sequence += 1;
            let event = orders_event("Order", "order-a", sequence, "OrderNoted");
            apply(&db, &config(true), &[(event, sequence as u64)]).await;
            if tokio::time::timeout(Duration::from_millis(200), waiting)
                .await
                .is_ok()
            {
                break;
            }
        }
    })
    .await;

    assert!(
        heard.is_ok(),
        "no waiter on order-a was woken within {WAIT:?}"
    );
    assert!(
        other_order.try_recv().is_err(),
        "a waiter on order-z was woken"
    );
    assert!(
        other_model.try_recv().is_err(),
        "a waiter on payments was woken"
    );
}

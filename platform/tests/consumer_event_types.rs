//! A consumer of some event types only (`ConsumerConfig::only_event_types`), against
//! real PostgreSQL and NATS: it passes over the other types without a transaction,
//! and, since its aggregates' sequences then have gaps by design, it catches a
//! delivery lost in flight by the consumer's delivery numbers instead.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use platform::consumer::ConsumerConfig;
use platform::nats::StreamSpec;
use platform::testing::{self, Recording, TestDb};
use platform::Envelope;
use tokio_util::sync::CancellationToken;

/// How long the test waits for the consumer before it fails.
const WAIT: Duration = Duration::from_secs(30);

const DURABLE: &str = "event-types-test";

/// The one event type the consumer is given.
const WANTED: &str = "Noted";

fn event(aggregate_id: &str, sequence: i64, event_type: &str) -> Envelope {
    testing::orders_event("Order", aggregate_id, sequence, event_type)
}

fn id(aggregate_id: &str, sequence: i64) -> String {
    Envelope::event_id_for("orders", "Order", aggregate_id, sequence)
}

/// Starts a consumer of the stream's `Noted` order events whose fetches wait up
/// to `fetch_expiry` for a first message.
fn start(
    db: &TestDb,
    jetstream: &jetstream::Context,
    stream: &StreamSpec,
    fetch_expiry: Duration,
) -> (tokio::task::JoinHandle<()>, CancellationToken) {
    let filter = format!("{}.Order.>", stream.subject_prefix);
    let mut config =
        ConsumerConfig::new(DURABLE, stream.clone(), filter).only_event_types(&[WANTED]);
    config.fetch_expiry = fetch_expiry;
    Recording::consume(db, jetstream, config)
}

/// Polls `done` every 20 ms until it holds, or fails with `what` after [`WAIT`].
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waiting = async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(WAIT, waiting).await.is_err() {
        panic!("{what} within {WAIT:?}");
    }
}

/// How many fetches wait on the durable.
async fn waiting_fetches(jetstream: &jetstream::Context, stream: &StreamSpec) -> Option<usize> {
    let handle = jetstream.get_stream(&stream.name).await.ok()?;
    Some(handle.consumer_info(DURABLE).await.ok()?.num_waiting)
}

async fn wait_until_all_acked(jetstream: &jetstream::Context, stream: &StreamSpec, last: u64) {
    testing::wait_for_ack_floor(jetstream, stream, DURABLE, last, WAIT).await;
}

/// Waits until `fetches` fetches wait on the durable.
async fn wait_for_fetches(
    jetstream: &jetstream::Context,
    stream: &StreamSpec,
    fetches: usize,
    what: &str,
) {
    wait_until(what, || async {
        waiting_fetches(jetstream, stream).await == Some(fetches)
    })
    .await;
}

async fn checkpoint(db: &TestDb) -> Option<i64> {
    sqlx::query_scalar("SELECT stream_seq FROM consumer_checkpoints WHERE consumer = $1")
        .bind(DURABLE)
        .fetch_optional(&db.pool)
        .await
        .unwrap()
}

async fn offsets(db: &TestDb) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT aggregate_id, last_sequence FROM consumer_offsets
          WHERE consumer = $1 ORDER BY aggregate_id",
    )
    .bind(DURABLE)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn other_event_types_are_acked_unapplied_and_cost_no_transaction() {
    let (db, jetstream, stream) = Recording::with_orders_stream().await;
    // Order `a` has a gap in its wanted events, where its other event is.
    let events = [
        event("a", 1, WANTED),
        event("a", 2, "Other"),
        event("a", 3, WANTED),
        event("b", 1, "Other"),
    ];
    testing::publish(&jetstream, &stream, &events)
        .await
        .unwrap();

    let (task, shutdown) = start(&db, &jetstream, &stream, Duration::from_millis(500));
    wait_until_all_acked(&jetstream, &stream, 4).await;
    assert_eq!(
        Recording::applied(&db.pool).await,
        vec![id("a", 1), id("a", 3)]
    );
    assert_eq!(offsets(&db).await, vec![("a".to_owned(), 3)]);
    let committed = checkpoint(&db).await;
    assert!(
        committed.is_some(),
        "the applied batch recorded no checkpoint"
    );

    // A fetch of other types only is acked without a transaction: the checkpoint
    // it would have moved stays where the last applied batch left it.
    let others = [event("a", 4, "Other"), event("b", 2, "Other")];
    testing::publish(&jetstream, &stream, &others)
        .await
        .unwrap();
    wait_until_all_acked(&jetstream, &stream, 6).await;
    assert_eq!(checkpoint(&db).await, committed);
    assert_eq!(Recording::applied(&db.pool).await.len(), 2);

    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

/// A delivery that never reaches the consumer is one its next cumulative ack
/// would ack unseen. Here a second fetch on the durable, whose messages nobody
/// reads, takes the place of a delivery lost in flight: the consumer sees the
/// numbers skip, rewinds, and applies the lost event after all.
#[tokio::test]
async fn a_delivery_lost_in_flight_is_fetched_again() {
    let (db, jetstream, stream) = Recording::with_orders_stream().await;
    // Fetches that wait long stay queued in the order they were made.
    let (task, shutdown) = start(&db, &jetstream, &stream, Duration::from_secs(30));
    wait_for_fetches(&jetstream, &stream, 1, "the consumer waits in a fetch").await;

    // A fetch of one message, queued behind the consumer's, into an inbox that
    // nobody reads.
    let client = jetstream.client();
    let inbox = client.new_inbox();
    let mut lost = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(
            format!("$JS.API.CONSUMER.MSG.NEXT.{}.{DURABLE}", stream.name),
            inbox,
            r#"{"batch":1,"expires":60000000000}"#.into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    wait_for_fetches(&jetstream, &stream, 2, "the lost fetch is queued").await;

    // The consumer's fetch takes `a`; its next one queues behind the lost one,
    // which takes `b`; then the consumer's takes `c`.
    testing::publish(&jetstream, &stream, &[event("a", 1, WANTED)])
        .await
        .unwrap();
    wait_until("the consumer applied a", || async {
        Recording::applied(&db.pool).await == vec![id("a", 1)]
    })
    .await;
    wait_for_fetches(&jetstream, &stream, 2, "the consumer fetches again").await;
    testing::publish(&jetstream, &stream, &[event("b", 1, WANTED)])
        .await
        .unwrap();
    let taken = tokio::time::timeout(WAIT, lost.next())
        .await
        .unwrap()
        .unwrap();
    assert!(taken.subject.ends_with(".b.Noted"), "{}", taken.subject);
    testing::publish(&jetstream, &stream, &[event("c", 1, WANTED)])
        .await
        .unwrap();

    wait_until("the lost event b was applied after all", || async {
        Recording::applied(&db.pool).await == vec![id("a", 1), id("b", 1), id("c", 1)]
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

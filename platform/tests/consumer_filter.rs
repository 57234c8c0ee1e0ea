//! A consumer's subject filter against real PostgreSQL and NATS. JetStream
//! delivers the consumer the whole stream (decision 0020); the consumer applies
//! only the events of its subjects, and acks the others so that nothing stays
//! pending.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use platform::consumer::ConsumerConfig;
use platform::nats::StreamSpec;
use platform::testing::{self, Recording, TestDb};
use platform::Envelope;
use tokio_util::sync::CancellationToken;

/// How long the test waits for the consumer before it fails.
const WAIT: Duration = Duration::from_secs(60);

const DURABLE: &str = "filter-test";

fn envelope(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Envelope {
    testing::orders_event(aggregate_type, aggregate_id, sequence, "Noted")
}

async fn publish(jetstream: &jetstream::Context, stream: &StreamSpec, envelopes: &[Envelope]) {
    testing::publish(jetstream, stream, envelopes)
        .await
        .unwrap();
}

/// Waits until the durable consumer has nothing pending and nothing unacked. It
/// may be missing for a moment, while the consumer recreates it.
async fn wait_until_all_acked(jetstream: &jetstream::Context, stream: &StreamSpec) {
    let mut handle = jetstream.get_stream(&stream.name).await.unwrap();
    let last = handle.info().await.unwrap().state.last_sequence;
    testing::wait_for_ack_floor(jetstream, stream, DURABLE, last, WAIT).await;
}

/// Starts a consumer of the stream's `Order` events.
fn start(
    db: &TestDb,
    jetstream: &jetstream::Context,
    stream: &StreamSpec,
) -> (tokio::task::JoinHandle<()>, CancellationToken) {
    let mut config = ConsumerConfig::new(
        DURABLE,
        stream.clone(),
        format!("{}.Order.>", stream.subject_prefix),
    );
    config.fetch_expiry = Duration::from_millis(500);
    Recording::consume(db, jetstream, config)
}

fn order(id: &str, sequence: i64) -> String {
    Envelope::event_id_for("orders", "Order", id, sequence)
}

#[tokio::test]
async fn a_consumer_applies_its_subjects_and_acks_the_others() {
    let (db, jetstream, stream) = Recording::with_orders_stream().await;
    // Another aggregate type in between, and last, so that the final ack has to
    // cover a message that is not applied.
    publish(
        &jetstream,
        &stream,
        &[
            envelope("Order", "a", 1),
            envelope("Refund", "r", 1),
            envelope("Order", "a", 2),
            envelope("Order", "b", 1),
            envelope("Refund", "r", 2),
        ],
    )
    .await;

    let (task, shutdown) = start(&db, &jetstream, &stream);

    wait_until_all_acked(&jetstream, &stream).await;
    assert_eq!(
        Recording::applied(&db.pool).await,
        vec![order("a", 1), order("a", 2), order("b", 1)]
    );

    // A fetch of nothing but other subjects is acked too.
    publish(&jetstream, &stream, &[envelope("Refund", "r", 3)]).await;
    wait_until_all_acked(&jetstream, &stream).await;
    assert_eq!(Recording::applied(&db.pool).await.len(), 3);

    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

/// A message of the consumer's subjects that carries no Envelope is terminated,
/// and the events around it are applied: no retry could ever apply it.
#[tokio::test]
async fn a_malformed_message_is_terminated_and_the_rest_applied() {
    let (db, jetstream, stream) = Recording::with_orders_stream().await;
    publish(&jetstream, &stream, &[envelope("Order", "a", 1)]).await;
    let subject = format!("{}.Order.a.Noted", stream.subject_prefix);
    jetstream
        .publish(subject, "not an envelope".into())
        .await
        .unwrap()
        .await
        .unwrap();
    publish(&jetstream, &stream, &[envelope("Order", "a", 2)]).await;

    let (task, shutdown) = start(&db, &jetstream, &stream);

    wait_until_all_acked(&jetstream, &stream).await;
    assert_eq!(
        Recording::applied(&db.pool).await,
        vec![order("a", 1), order("a", 2)]
    );
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

/// A durable left by an earlier version, with a filter on the server and explicit
/// acks, is recreated to deliver just after its ack floor.
#[tokio::test]
async fn an_outdated_durable_is_recreated_after_its_ack_floor() {
    let (db, jetstream, stream) = Recording::with_orders_stream().await;
    publish(
        &jetstream,
        &stream,
        &[
            envelope("Order", "a", 1),
            envelope("Order", "a", 2),
            envelope("Order", "a", 3),
        ],
    )
    .await;
    let handle = jetstream.get_stream(&stream.name).await.unwrap();
    handle
        .create_consumer(pull::Config {
            durable_name: Some(DURABLE.to_owned()),
            filter_subject: format!("{}.Order.>", stream.subject_prefix),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: 2 },
            ..Default::default()
        })
        .await
        .unwrap();
    // What the old durable had done: event 1 applied, its offset recorded.
    sqlx::query("INSERT INTO consumer_offsets VALUES ($1, 'Order', 'a', 1)")
        .bind(DURABLE)
        .execute(&db.pool)
        .await
        .unwrap();

    let (task, shutdown) = start(&db, &jetstream, &stream);
    wait_until_all_acked(&jetstream, &stream).await;
    assert_eq!(
        Recording::applied(&db.pool).await,
        vec![order("a", 2), order("a", 3)]
    );
    let config = handle.consumer_info(DURABLE).await.unwrap().config;
    assert_eq!(config.ack_policy, AckPolicy::All);
    assert_eq!(config.filter_subject, "");

    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

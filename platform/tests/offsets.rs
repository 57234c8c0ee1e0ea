//! A consumer's aggregate offsets are read without a row lock, so two batches of
//! one consumer can read them at the same time: a redelivery racing its original,
//! or two workers started on one durable. Only one of them may apply the events;
//! the other rolls back and, applied again, finds them applied.

use std::collections::HashMap;

use async_trait::async_trait;
use platform::consumer::{apply_batch, ConsumerConfig, Handler};
use platform::testing::{test_stream, Recording, TestDb};
use platform::Envelope;
use sqlx::PgConnection;
use tokio::sync::Barrier;

/// Records each event it applies in `applied`. On the event of sequence
/// `wait_on`, the first new one of the batch, it waits until both batches got
/// there: both have read their offsets, and neither has written any.
struct Racing {
    wait_on: i64,
    both_read: Barrier,
}

#[async_trait]
impl Handler for Racing {
    fn name(&self) -> &str {
        "racing"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        if envelope.sequence == self.wait_on {
            self.both_read.wait().await;
        }
        sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
            .bind(&envelope.event_id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

fn event(aggregate_id: &str, sequence: i64) -> Envelope {
    Envelope {
        event_id: Envelope::event_id_for("tests", "Tally", aggregate_id, sequence),
        service: "tests".into(),
        aggregate_type: "Tally".into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        global_position: sequence,
        event_type: "Added".into(),
        event_version: "1.0".into(),
        payload: serde_json::json!({"amount": 1}),
        metadata: HashMap::new(),
        recorded_at: chrono::Utc::now(),
    }
}

/// Runs the same batch twice at once; returns how many applied it.
async fn race(db: &TestDb, config: &ConsumerConfig, batch: &[Envelope]) -> usize {
    let handler = Racing {
        wait_on: batch[0].sequence,
        both_read: Barrier::new(2),
    };
    let with_sequences: Vec<(&Envelope, u64)> = batch.iter().zip(1..).collect();
    let (first, second) = tokio::join!(
        apply_batch(&db.pool, &handler, config, with_sequences.clone()),
        apply_batch(&db.pool, &handler, config, with_sequences.clone()),
    );
    let outcomes = [first, second];
    // The one that lost rolled back; applied again, it finds everything applied.
    for outcome in &outcomes {
        if let Err(error) = outcome {
            let again = apply_batch(&db.pool, &handler, config, with_sequences.clone()).await;
            let again = again.unwrap_or_else(|again| panic!("{again:#}, after {error:#}"));
            assert_eq!(again, 0);
        }
    }
    outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(applied) if *applied > 0))
        .count()
}

#[tokio::test]
async fn two_batches_that_read_no_offset_apply_a_new_aggregate_once() {
    let db = Recording::database().await;
    let config = ConsumerConfig::new("racing", test_stream("tests"), "tests.>".into());

    let winners = race(&db, &config, &[event("a", 1), event("a", 2)]).await;

    assert_eq!(winners, 1);
    assert_eq!(
        Recording::applied(&db.pool).await,
        vec!["tests:Tally:a:1", "tests:Tally:a:2"]
    );
}

#[tokio::test]
async fn two_batches_that_read_the_same_offset_apply_the_next_events_once() {
    let db = Recording::database().await;
    let config = ConsumerConfig::new("racing", test_stream("tests"), "tests.>".into());
    // The aggregate is at sequence 1 already, and event 2 was not applied.
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, aggregate_type, aggregate_id, last_sequence)
         VALUES ('racing', 'Tally', 'b', 1)",
    )
    .execute(&db.pool)
    .await
    .expect("record an offset");

    let winners = race(&db, &config, &[event("b", 2), event("b", 3)]).await;

    assert_eq!(winners, 1);
    assert_eq!(
        Recording::applied(&db.pool).await,
        vec!["tests:Tally:b:2", "tests:Tally:b:3"]
    );
}

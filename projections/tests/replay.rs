//! Replay-fixture tests: the recorded saga (`tests/fixtures/saga.jsonl`, v1
//! events) replayed into each projection must give the reviewed snapshot in
//! `tests/fixtures/expected/<projection>.json`. `UPDATE_SNAPSHOTS=1` rewrites
//! the snapshots; review them before keeping them.

use std::path::PathBuf;

use projections::app::PROJECTIONS;
use projections::diff::{self, Change, ColumnChange};
use projections::replay::{self, Replay};
use serde_json::json;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn saga() -> PathBuf {
    fixtures().join("saga.jsonl")
}

async fn replays_into_its_snapshot(name: &str) {
    let replay = Replay::fixture(saga(), name).await.unwrap();
    let snapshot = replay.snapshot().await.unwrap();
    let expected = fixtures().join(format!("expected/{name}.json"));
    replay::assert_snapshot(&snapshot, expected);
}

#[tokio::test]
async fn the_saga_replays_into_the_expected_products() {
    replays_into_its_snapshot("products").await;
}

#[tokio::test]
async fn the_saga_replays_into_the_expected_orders() {
    replays_into_its_snapshot("orders").await;
}

/// The orders fold takes an order's later events into the rows it inserts when
/// the order is placed in the same batch, and updates the rows otherwise: every
/// way of cutting the stream into batches must give the same read model.
#[tokio::test]
async fn the_orders_read_model_is_the_same_whatever_the_batch_boundaries() {
    let envelopes = replay::read_fixture(saga()).unwrap();
    let whole = Replay::fixture(saga(), "orders").await.unwrap();
    let expected = whole.snapshot().await.unwrap();
    for batch in [1, 2, 3, 5, 8] {
        let replay = Replay::new("orders").await.unwrap();
        // Each call applies only what the earlier ones did not: one new batch.
        let mut end = 0;
        while end < envelopes.len() {
            end = (end + batch).min(envelopes.len());
            replay.apply(&envelopes[..end]).await.unwrap();
        }
        assert_eq!(
            replay.snapshot().await.unwrap(),
            expected,
            "batches of {batch} events"
        );
    }
}

/// Without its offsets the orders consumer sees every `OrderPlaced` again: the
/// orders already in the read model keep their rows and lines, which are not
/// inserted a second time.
#[tokio::test]
async fn the_orders_read_model_survives_its_offsets_being_lost() {
    let envelopes = replay::read_fixture(saga()).unwrap();
    let replay = Replay::fixture(saga(), "orders").await.unwrap();
    let expected = replay.snapshot().await.unwrap();
    sqlx::query("DELETE FROM consumer_offsets")
        .execute(&replay.db.pool)
        .await
        .unwrap();
    let applied = replay.apply(&envelopes).await.unwrap();
    assert!(applied > 0, "without offsets every event is new again");
    assert_eq!(replay.snapshot().await.unwrap(), expected);
}

#[tokio::test]
async fn the_saga_replays_into_the_expected_customers() {
    replays_into_its_snapshot("customers").await;
}

#[tokio::test]
async fn the_saga_replays_into_the_expected_payments() {
    replays_into_its_snapshot("payments").await;
}

#[tokio::test]
async fn the_saga_replays_into_the_expected_notifications() {
    replays_into_its_snapshot("notifications").await;
}

#[tokio::test]
async fn the_fixture_is_recorded_in_v1_and_feeds_every_projection() {
    let envelopes = replay::read_fixture(saga()).unwrap();
    // Recorded before OrderCancelled 2.0: its cancellation is the v1 payload that
    // the upcaster lifts. A fixture recorded again must keep a v1 copy of it.
    assert!(envelopes.iter().all(|e| e.event_version == "1.0"));
    let cancelled = envelopes
        .iter()
        .find(|e| e.event_type == "OrderCancelled")
        .expect("a cancellation");
    assert_eq!(cancelled.payload["was"], "CONFIRMED");
    for projection in PROJECTIONS {
        let fed = envelopes
            .iter()
            .filter(|e| replay::source_of(projection, e).is_some())
            .count();
        assert!(fed > 0, "nothing in the fixture feeds {}", projection.name);
    }
}

#[tokio::test]
async fn delivering_the_saga_again_changes_nothing() {
    let envelopes = replay::read_fixture(saga()).unwrap();
    for projection in PROJECTIONS {
        let replay = Replay::new(projection.name).await.unwrap();
        let first = replay.apply(&envelopes).await.unwrap();
        assert!(first > 0, "{} applied nothing", projection.name);
        let once = replay.snapshot().await.unwrap();
        // A redelivery of a part, then of everything, as JetStream may send it.
        let half = &envelopes[..envelopes.len() / 2];
        assert_eq!(replay.apply(half).await.unwrap(), 0);
        assert_eq!(replay.apply(&envelopes).await.unwrap(), 0);
        assert_eq!(
            replay.snapshot().await.unwrap(),
            once,
            "{}",
            projection.name
        );
    }
}

#[tokio::test]
async fn replay_diff_finds_nothing_on_a_faithful_model_and_names_a_changed_row() {
    let envelopes = replay::read_fixture(saga()).unwrap();
    let live = Replay::fixture(saga(), "orders").await.unwrap();
    let server = platform::testing::server_options();
    let same = diff::replay_diff(&live.db.pool, &server, live.projection, &envelopes)
        .await
        .unwrap();
    assert!(same.is_empty(), "{same}");

    let shipped: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM orders WHERE status = 'SHIPPED' LIMIT 1")
            .fetch_one(&live.db.pool)
            .await
            .unwrap();
    sqlx::query("UPDATE orders SET status = 'CANCELLED' WHERE id = $1")
        .bind(shipped)
        .execute(&live.db.pool)
        .await
        .unwrap();
    let changed = diff::replay_diff(&live.db.pool, &server, live.projection, &envelopes)
        .await
        .unwrap();
    assert_eq!(changed.rows.len(), 1, "{changed}");
    let row = &changed.rows[0];
    assert_eq!(
        (row.table.as_str(), row.key.clone()),
        ("orders", format!("id={shipped}"))
    );
    let expected = vec![ColumnChange {
        column: "status".into(),
        live: json!("CANCELLED"),
        replayed: json!("SHIPPED"),
    }];
    assert_eq!(row.change, Change::Changed(expected));
}

#[tokio::test]
async fn replay_diff_names_rows_missing_from_the_live_model() {
    let envelopes = replay::read_fixture(saga()).unwrap();
    let live = Replay::fixture(saga(), "products").await.unwrap();
    sqlx::query("DELETE FROM products WHERE sku = 'MUG'")
        .execute(&live.db.pool)
        .await
        .unwrap();
    let server = platform::testing::server_options();
    let diff = diff::replay_diff(&live.db.pool, &server, live.projection, &envelopes)
        .await
        .unwrap();
    assert_eq!(diff.rows.len(), 1, "{diff}");
    assert_eq!(diff.rows[0].key, "sku=MUG");
    assert!(matches!(&diff.rows[0].change, Change::Added(row) if row["sku"] == "MUG"));
}

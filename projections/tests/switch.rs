//! A rebuild's switch against real PostgreSQL: the rebuilt tables are loaded
//! without foreign keys and get them at the switch (decision 0022).

use async_nats::jetstream;
use platform::config::CommonArgs;
use platform::telemetry::LogFormat;
use platform::testing::{nats_url, test_namespace};
use projections::rebuild::{self, Requests};
use projections::replay::Replay;
use sqlx::PgPool;

/// The foreign keys of a table, as `name definition`.
async fn foreign_keys(pool: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
          WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY conname",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Begins a rebuild of the orders projection in a fresh database, as the admin
/// API does, and returns it with the version it builds.
async fn begun() -> (Replay, i32) {
    let replay = Replay::new("orders").await.unwrap();
    let pool = &replay.db.pool;
    rebuild::register(pool).await.unwrap();
    let jetstream = jetstream::new(platform::nats::connect(&nats_url()).await.unwrap());
    let common = CommonArgs {
        database_url: replay.db.url(),
        nats_url: nats_url(),
        stream_namespace: test_namespace(),
        log_format: LogFormat::Pretty,
    };
    let requests = Requests::default();
    let begun = rebuild::begin(pool, &jetstream, &common, &requests, replay.projection)
        .await
        .unwrap();
    (replay, begun.target_version)
}

#[tokio::test]
async fn the_rebuilt_tables_get_their_foreign_keys_at_the_switch() {
    let (replay, target) = begun().await;
    let pool = &replay.db.pool;
    let live = foreign_keys(pool, "public.order_lines").await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        foreign_keys(pool, "rebuild_orders.order_lines").await,
        Vec::<String>::new()
    );

    rebuild::switch(pool, replay.projection, target)
        .await
        .unwrap();

    assert_eq!(foreign_keys(pool, "public.order_lines").await, live);
}

/// A rebuild begun by an earlier version built its tables with their foreign
/// keys; its switch keeps them rather than fail on adding them again.
#[tokio::test]
async fn a_rebuild_begun_with_its_foreign_keys_still_switches() {
    let (replay, target) = begun().await;
    let pool = &replay.db.pool;
    let live = foreign_keys(pool, "public.order_lines").await;
    sqlx::query(
        "ALTER TABLE rebuild_orders.order_lines ADD CONSTRAINT order_lines_order_id_fkey
           FOREIGN KEY (order_id) REFERENCES rebuild_orders.orders(id) ON DELETE CASCADE",
    )
    .execute(pool)
    .await
    .unwrap();

    rebuild::switch(pool, replay.projection, target)
        .await
        .unwrap();

    assert_eq!(foreign_keys(pool, "public.order_lines").await, live);
}

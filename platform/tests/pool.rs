//! A connection goes back to the pool flushed rather than pinged (decision 0030):
//! whatever a cancelled statement or a dropped transaction left owing is still
//! worked off before the next borrower gets the connection.

use std::time::Duration;

use platform::db::pool_options;
use platform::testing::TestDb;
use sqlx::PgPool;

/// Waits until the pool's one connection is back in it: it goes back in a task of
/// its own, once whatever it owed is worked off.
async fn until_returned(pool: &PgPool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pool.num_idle() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many other backends of `db` are in a state `LIKE state`.
async fn backends_in_state(db: &TestDb, state: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = $1 AND state LIKE $2 AND pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .bind(state)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

/// A pool of one connection on `db`, so that every borrower gets the same one.
async fn one_connection(db: &TestDb) -> PgPool {
    pool_options()
        .max_connections(1)
        .connect_with(db.options())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_statement_cancelled_in_flight_leaves_nothing_for_the_next_borrower() {
    let db = TestDb::new(&[]).await.unwrap();
    let pool = one_connection(&db).await;

    // The statement is sent, and its answer is still owed when the future is dropped.
    let slow = sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.3)").fetch_one(&pool);
    assert!(tokio::time::timeout(Duration::from_millis(50), slow)
        .await
        .is_err());

    // The slow statement's row and its ready-for-query are read off as the
    // connection goes back, not left for the next borrower to wait on.
    until_returned(&pool).await;
    assert_eq!(backends_in_state(&db, "active").await, 0, "still running");
    let next: i32 = sqlx::query_scalar("SELECT 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(next, 2);
    pool.close().await;
}

#[tokio::test]
async fn a_transaction_dropped_uncommitted_is_rolled_back_as_it_goes_back() {
    let db = TestDb::new(&[]).await.unwrap();
    sqlx::query("CREATE TABLE notes (body text)")
        .execute(&db.pool)
        .await
        .unwrap();
    let pool = one_connection(&db).await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO notes VALUES ('never committed')")
        .execute(&mut *tx)
        .await
        .unwrap();
    drop(tx);
    until_returned(&pool).await;

    // Not at the next borrow: a transaction left open meanwhile would hold back
    // every relay on the server, which publishes only below the oldest one.
    let open = backends_in_state(&db, "idle in transaction%").await;
    assert_eq!(open, 0, "the dropped transaction is still open");
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(notes, 0);
    pool.close().await;
}

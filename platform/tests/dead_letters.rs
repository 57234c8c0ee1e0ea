//! Dead letters against real PostgreSQL and NATS: a handler that keeps failing on
//! one event gets it parked while the rest goes on, a retry after the fix applies
//! it, and a lost database connection is retried without ever parking.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use platform::consumer::{Consumer, ConsumerConfig, Handler};
use platform::db::READ_MODEL_MIGRATIONS;
use platform::dead_letters::DeadLetters;
use platform::http::dead_letters_router;
use platform::nats::StreamSpec;
use platform::testing::{self, test_stream, TestDb};
use platform::Envelope;
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long a test waits for the consumer before it fails.
const WAIT: Duration = Duration::from_secs(60);

/// Records every event it applies in `applied`, and fails on the poison event
/// while `poisoned` is set.
struct PoisonHandler {
    poison: String,
    poisoned: AtomicBool,
    failures: AtomicU32,
}

#[async_trait]
impl Handler for PoisonHandler {
    fn name(&self) -> &str {
        "poison"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        if envelope.event_id == self.poison && self.poisoned.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            anyhow::bail!("poison pill {}", envelope.event_id);
        }
        record(tx, envelope).await
    }
}

/// Runs `sabotage` on its own database connection on the target event, `kills`
/// times, then applies it: `pg_terminate_backend` loses the connection, as an
/// operator or a failover would, and `pg_cancel_backend` cancels the statement
/// (SQLSTATE 57014) but keeps the connection. It always fails on the poison
/// event, if there is one.
struct ConnectionKiller {
    target: String,
    kills: AtomicU32,
    poison: Option<String>,
    sabotage: &'static str,
}

const TERMINATE: &str = "SELECT pg_terminate_backend(pg_backend_pid())";
const CANCEL: &str = "SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(5)";

#[async_trait]
impl Handler for ConnectionKiller {
    fn name(&self) -> &str {
        "connection killer"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        if self.poison.as_ref() == Some(&envelope.event_id) {
            anyhow::bail!("poison pill {}", envelope.event_id);
        }
        if envelope.event_id == self.target && self.kills.load(Ordering::SeqCst) > 0 {
            self.kills.fetch_sub(1, Ordering::SeqCst);
            sqlx::query(self.sabotage).execute(&mut *tx).await?;
        }
        record(tx, envelope).await
    }
}

async fn record(tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
        .bind(&envelope.event_id)
        .execute(tx)
        .await?;
    Ok(())
}

async fn database() -> TestDb {
    let db = TestDb::new(&[&READ_MODEL_MIGRATIONS]).await.unwrap();
    sqlx::query("CREATE TABLE applied (event_id text PRIMARY KEY)")
        .execute(&db.pool)
        .await
        .unwrap();
    db
}

async fn jetstream(stream: &StreamSpec) -> jetstream::Context {
    testing::jetstream_with(stream).await.unwrap()
}

fn envelope(aggregate_id: &str, sequence: i64) -> Envelope {
    testing::orders_event("Order", aggregate_id, sequence, "OrderNoted")
}

async fn publish(jetstream: &jetstream::Context, stream: &StreamSpec, envelopes: &[Envelope]) {
    testing::publish(jetstream, stream, envelopes)
        .await
        .unwrap();
}

fn spawn_consumer(
    jetstream: &jetstream::Context,
    pool: &PgPool,
    handler: Arc<dyn Handler>,
    stream: &StreamSpec,
) -> (JoinHandle<()>, CancellationToken) {
    let mut config = ConsumerConfig::new(
        "dead-letter-test",
        stream.clone(),
        format!("{}.Order.>", stream.subject_prefix),
    );
    config.max_attempts = 3;
    config.retry_backoff = Duration::from_millis(10);
    config.fetch_expiry = Duration::from_millis(500);
    let consumer = Consumer::new(jetstream.clone(), pool.clone(), handler, config);
    let shutdown = CancellationToken::new();
    (tokio::spawn(consumer.run(shutdown.clone())), shutdown)
}

/// Polls until every one of `event_ids` is in `applied`.
async fn wait_until_applied(pool: &PgPool, event_ids: &[&str]) {
    let ids: Vec<String> = event_ids.iter().map(|id| id.to_string()).collect();
    let waiting = async {
        loop {
            let count: i64 =
                sqlx::query_scalar("SELECT count(*) FROM applied WHERE event_id = ANY($1)")
                    .bind(&ids)
                    .fetch_one(pool)
                    .await
                    .unwrap();
            if count == ids.len() as i64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap_or_else(|_| panic!("{event_ids:?} were not all applied within {WAIT:?}"));
}

async fn is_applied(pool: &PgPool, event_id: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM applied WHERE event_id = $1)")
        .bind(event_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn call(router: &Router, method: Method, uri: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn stop(task: JoinHandle<()>, shutdown: CancellationToken) {
    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_poison_event_is_parked_and_a_retry_after_the_fix_applies_it() {
    let db = database().await;
    let stream = test_stream("orders");
    let jetstream = jetstream(&stream).await;
    let poison = envelope("order-a", 2);
    let handler = Arc::new(PoisonHandler {
        poison: poison.event_id.clone(),
        poisoned: AtomicBool::new(true),
        failures: AtomicU32::new(0),
    });
    let first = [
        envelope("order-a", 1),
        envelope("order-b", 1),
        poison.clone(),
        envelope("order-a", 3),
        envelope("order-b", 2),
    ];
    publish(&jetstream, &stream, &first).await;
    let (task, shutdown) = spawn_consumer(&jetstream, &db.pool, handler.clone(), &stream);

    // The events around the poison, in its aggregate and in another, are applied.
    let ids = |envelopes: &[Envelope]| -> Vec<String> {
        envelopes
            .iter()
            .filter(|e| e.event_id != poison.event_id)
            .map(|e| e.event_id.clone())
            .collect()
    };
    let expected = ids(&first);
    wait_until_applied(
        &db.pool,
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    assert!(!is_applied(&db.pool, &poison.event_id).await);
    assert_eq!(handler.failures.load(Ordering::SeqCst), 3);

    // Later batches go on too.
    let later = [envelope("order-a", 4), envelope("order-c", 1)];
    publish(&jetstream, &stream, &later).await;
    let expected = ids(&later);
    wait_until_applied(
        &db.pool,
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    stop(task, shutdown).await;

    let dead_letters =
        DeadLetters::new(db.pool.clone()).with_handler("dead-letter-test", handler.clone());
    let (router, _) = dead_letters_router::<()>(dead_letters).split_for_parts();
    let (status, list) = call(&router, Method::GET, "/api/admin/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let letter = &items[0];
    assert_eq!(letter["consumer"], "dead-letter-test");
    assert_eq!(letter["event_id"], poison.event_id.as_str());
    assert_eq!(letter["aggregate_id"], "order-a");
    assert_eq!(letter["sequence"], 2);
    assert_eq!(letter["attempts"], 3);
    assert!(
        letter["error"].as_str().unwrap().contains("poison pill"),
        "{letter}"
    );
    let id = letter["id"].as_i64().unwrap();
    let retry = format!("/api/admin/dead-letters/{id}/retry");

    // A retry before the fix fails again and keeps the dead letter.
    let (status, problem) = call(&router, Method::POST, &retry).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("poison pill"),
        "{problem}"
    );
    let (_, list) = call(&router, Method::GET, "/api/admin/dead-letters").await;
    assert_eq!(list["items"][0]["attempts"], 4);

    // After the fix the retry applies it, and the dead letter is gone.
    handler.poisoned.store(false, Ordering::SeqCst);
    let (status, applied) = call(&router, Method::POST, &retry).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["event_id"], poison.event_id.as_str());
    assert!(is_applied(&db.pool, &poison.event_id).await);
    let (_, list) = call(&router, Method::GET, "/api/admin/dead-letters").await;
    assert_eq!(list["items"], serde_json::json!([]));
    let (status, _) = call(&router, Method::POST, &retry).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    jetstream.delete_stream(&stream.name).await.unwrap();
}

#[tokio::test]
async fn a_lost_database_connection_is_retried_and_never_parked() {
    let db = database().await;
    let stream = test_stream("orders");
    let jetstream = jetstream(&stream).await;
    let target = envelope("order-a", 2);
    // Twice as many failures as the consumer's max_attempts of 3.
    let handler = Arc::new(ConnectionKiller {
        target: target.event_id.clone(),
        kills: AtomicU32::new(6),
        poison: None,
        sabotage: TERMINATE,
    });
    let events = [
        envelope("order-a", 1),
        envelope("order-b", 1),
        target.clone(),
        envelope("order-a", 3),
        envelope("order-b", 2),
    ];
    publish(&jetstream, &stream, &events).await;
    let (task, shutdown) = spawn_consumer(&jetstream, &db.pool, handler.clone(), &stream);

    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    wait_until_applied(&db.pool, &ids).await;
    stop(task, shutdown).await;
    assert_eq!(
        handler.kills.load(Ordering::SeqCst),
        0,
        "every kill happened"
    );
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(parked, 0, "a lost connection must never park an event");
    jetstream.delete_stream(&stream.name).await.unwrap();
}

#[tokio::test]
async fn a_connection_lost_while_a_poison_event_is_retried_parks_only_the_poison() {
    let db = database().await;
    let stream = test_stream("orders");
    let jetstream = jetstream(&stream).await;
    let poison = envelope("order-a", 1);
    let target = envelope("order-b", 1);
    let handler = Arc::new(ConnectionKiller {
        target: target.event_id.clone(),
        kills: AtomicU32::new(6),
        poison: Some(poison.event_id.clone()),
        sabotage: TERMINATE,
    });
    let events = [poison.clone(), target.clone(), envelope("order-a", 2)];
    publish(&jetstream, &stream, &events).await;
    let (task, shutdown) = spawn_consumer(&jetstream, &db.pool, handler.clone(), &stream);

    let applied = [target.event_id.as_str(), events[2].event_id.as_str()];
    wait_until_applied(&db.pool, &applied).await;
    stop(task, shutdown).await;
    assert_eq!(
        handler.kills.load(Ordering::SeqCst),
        0,
        "every kill happened"
    );
    let parked: Vec<(String, i32)> =
        sqlx::query_as("SELECT event_id, attempts FROM dead_letters ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(parked, [(poison.event_id.clone(), 3)]);
    assert!(!is_applied(&db.pool, &poison.event_id).await);
    jetstream.delete_stream(&stream.name).await.unwrap();
}

#[tokio::test]
async fn a_cancelled_statement_is_retried_and_never_parked() {
    let db = database().await;
    let stream = test_stream("orders");
    let jetstream = jetstream(&stream).await;
    let target = envelope("order-a", 1);
    // The connection survives a cancel, so only the error's SQLSTATE (class 57)
    // tells it from a handler's own failure.
    let handler = Arc::new(ConnectionKiller {
        target: target.event_id.clone(),
        kills: AtomicU32::new(6),
        poison: None,
        sabotage: CANCEL,
    });
    let events = [
        target.clone(),
        envelope("order-a", 2),
        envelope("order-b", 1),
    ];
    publish(&jetstream, &stream, &events).await;
    let (task, shutdown) = spawn_consumer(&jetstream, &db.pool, handler.clone(), &stream);

    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    wait_until_applied(&db.pool, &ids).await;
    stop(task, shutdown).await;
    assert_eq!(
        handler.kills.load(Ordering::SeqCst),
        0,
        "every cancel happened"
    );
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(parked, 0, "a cancelled statement must never park an event");
    jetstream.delete_stream(&stream.name).await.unwrap();
}

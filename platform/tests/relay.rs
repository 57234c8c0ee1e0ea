//! The relay against real PostgreSQL and NATS JetStream. Each test has its own
//! database and stream; events are inserted with SQL the way postgres-es writes
//! them, and the stream is read back and compared with the events table in relay
//! order: `(transaction_id, global_position)`.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, context::GetStreamErrorKind};
use futures::StreamExt;
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::nats::StreamSpec;
use platform::relay::{advisory_lock_key, Relay, RelayConfig, CORRELATION_ID_HEADER};
use platform::testing::{test_stream, transaction_in_another_database, NatsServer, TestDb};
use platform::Envelope;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SERVICE: &str = "inventory";
/// The longest any test waits for the relay to catch up.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// One test's database, JetStream connection and stream.
struct Setup {
    db: TestDb,
    jetstream: jetstream::Context,
    stream: StreamSpec,
}

impl Setup {
    async fn new(nats_url: &str) -> anyhow::Result<Self> {
        init_logs();
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS]).await?;
        let client = platform::nats::connect(nats_url).await?;
        Ok(Self {
            db,
            jetstream: jetstream::new(client),
            stream: test_stream(SERVICE),
        })
    }

    fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    fn relay(&self, config: RelayConfig) -> Relay {
        Relay::new(
            SERVICE,
            self.db.pool.clone(),
            self.db.options(),
            self.jetstream.clone(),
            self.stream.clone(),
            config,
        )
    }

    /// Deletes the stream, so the shared NATS server does not collect test streams.
    async fn finish(self) -> anyhow::Result<()> {
        self.jetstream
            .delete_stream(&self.stream.name)
            .await
            .context("delete the test stream")?;
        Ok(())
    }
}

fn nats_url() -> String {
    platform::testing::nats_url()
}

/// Logs go to the test output when `RUST_LOG` asks for them.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A relay on its own task, stopped through its shutdown token.
struct RunningRelay {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningRelay {
    fn start(relay: Relay) -> Self {
        let shutdown = CancellationToken::new();
        let task = relay.spawn(shutdown.clone());
        Self { shutdown, task }
    }

    /// Asks the relay to stop and checks that it returns `Ok` promptly.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("the relay did not stop within 10 s of shutdown")?
            .context("the relay task panicked")?
            .context("the relay returned an error")
    }
}

/// A random generator whose seed is printed, so a failing run can be replayed.
fn seeded_rng(test: &str) -> StdRng {
    let seed = std::env::var("RELAY_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{test}: RELAY_TEST_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// Appends one `Restocked` event the way postgres-es does: one named-column insert.
async fn insert_event(
    conn: &mut PgConnection,
    aggregate_id: &str,
    sequence: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Product', $1, $2, 'Restocked', '1.0', '{\"Restocked\":{\"quantity\":1}}',
                 json_build_object('correlation_id', $3::text))",
    )
    .bind(aggregate_id)
    .bind(sequence)
    .bind(format!("request-{aggregate_id}-{sequence}"))
    .execute(conn)
    .await
    .context("insert an event")?;
    Ok(())
}

/// Appends `sequences` of one aggregate in the caller's transaction.
async fn insert_events(
    conn: &mut PgConnection,
    aggregate_id: &str,
    sequences: RangeInclusive<i64>,
) -> anyhow::Result<()> {
    for sequence in sequences {
        insert_event(conn, aggregate_id, sequence).await?;
    }
    Ok(())
}

/// Appends `sequences` of one aggregate in a transaction of their own.
async fn commit_events(
    pool: &PgPool,
    aggregate_id: &str,
    sequences: RangeInclusive<i64>,
) -> anyhow::Result<()> {
    let mut transaction = pool.begin().await?;
    insert_events(&mut transaction, aggregate_id, sequences).await?;
    transaction.commit().await?;
    Ok(())
}

/// Commits `total` events in transactions of 1 to 50 events over ten aggregates,
/// pausing `pause` between transactions.
async fn write_events(
    pool: PgPool,
    total: i64,
    pause: Duration,
    mut rng: StdRng,
) -> anyhow::Result<()> {
    let mut next_sequence = [1_i64; 10];
    let mut written = 0;
    while written < total {
        let size = rng.random_range(1..=50).min(total - written);
        let mut transaction = pool.begin().await?;
        for _ in 0..size {
            let aggregate = rng.random_range(0..next_sequence.len());
            insert_event(
                &mut transaction,
                &format!("p{aggregate}"),
                next_sequence[aggregate],
            )
            .await?;
            next_sequence[aggregate] += 1;
        }
        transaction.commit().await?;
        written += size;
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

/// What one random writer did.
#[derive(Default)]
struct Tally {
    committed: i64,
    rolled_back: i64,
}

/// Writes random transactions on three aggregates of its own, holding some open
/// for a moment so commits overlap, and rolls about a quarter of them back.
async fn write_randomly(pool: PgPool, writer: usize, mut rng: StdRng) -> anyhow::Result<Tally> {
    let aggregates: Vec<String> = (0..3).map(|a| format!("writer{writer}-p{a}")).collect();
    let mut next_sequence = vec![1_i64; aggregates.len()];
    let mut tally = Tally::default();
    for _ in 0..40 {
        let mut pending = next_sequence.clone();
        let size = rng.random_range(1..=12);
        let mut transaction = pool.begin().await?;
        for _ in 0..size {
            let aggregate = rng.random_range(0..aggregates.len());
            insert_event(&mut transaction, &aggregates[aggregate], pending[aggregate]).await?;
            pending[aggregate] += 1;
            if rng.random_bool(0.2) {
                tokio::time::sleep(Duration::from_millis(rng.random_range(1..=5))).await;
            }
        }
        if rng.random_bool(0.25) {
            transaction.rollback().await?;
            tally.rolled_back += size;
        } else {
            transaction.commit().await?;
            next_sequence = pending;
            tally.committed += size;
        }
    }
    Ok(tally)
}

/// One message of the stream.
struct Received {
    msg_id: String,
    correlation_id: Option<String>,
    envelope: Envelope,
}

/// How many messages the stream holds; 0 before the relay created it.
async fn stream_count(setup: &Setup) -> anyhow::Result<u64> {
    match setup.jetstream.get_stream(&setup.stream.name).await {
        Ok(stream) => Ok(stream.get_info().await?.state.messages),
        Err(error) => match error.kind() {
            GetStreamErrorKind::JetStream(error)
                if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(0)
            }
            _ => Err(error.into()),
        },
    }
}

/// Waits until the stream holds at least `expected` messages and returns the count.
async fn wait_for_count(setup: &Setup, expected: u64) -> anyhow::Result<u64> {
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut last = String::from("nothing yet");
    while Instant::now() < deadline {
        match stream_count(setup).await {
            Ok(count) if count >= expected => return Ok(count),
            Ok(count) => last = format!("{count} messages"),
            // NATS may be restarting; keep asking until the deadline.
            Err(error) => last = format!("error {error:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "stream {} did not reach {expected} messages within {WAIT_LIMIT:?}; last seen: {last}",
        setup.stream.name
    )
}

/// Every message of the stream in stream order, read with an ordered consumer.
async fn read_stream(setup: &Setup) -> anyhow::Result<Vec<Received>> {
    let count = stream_count(setup).await?;
    let stream = setup.jetstream.get_stream(&setup.stream.name).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?;
    let mut received = Vec::new();
    while (received.len() as u64) < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .context("the ordered consumer stalled")?
            .context("the ordered consumer ended")??;
        let headers = message.headers.clone().unwrap_or_default();
        let header = |name: &str| headers.get(name).map(|value| value.as_str().to_owned());
        received.push(Received {
            msg_id: header("Nats-Msg-Id").context("a message without Nats-Msg-Id")?,
            correlation_id: header(CORRELATION_ID_HEADER),
            envelope: serde_json::from_slice(&message.payload).context("decode an envelope")?,
        });
    }
    Ok(received)
}

/// The event ids of the committed rows in relay order, optionally only those of
/// transactions older than `before_transaction`.
async fn relay_order_ids(
    pool: &PgPool,
    before_transaction: Option<i64>,
) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence FROM events
          WHERE $1::bigint IS NULL OR transaction_id < $1::bigint::text::xid8
          ORDER BY transaction_id, global_position",
    )
    .bind(before_transaction)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, id, sequence)| Envelope::event_id_for(SERVICE, &kind, &id, sequence))
        .collect())
}

/// Checks that the stream holds each committed event exactly once, in relay order,
/// with per-aggregate sequences rising; returns how many it holds.
async fn assert_published_exactly_once_in_order(setup: &Setup) -> anyhow::Result<usize> {
    let received = read_stream(setup).await?;
    let expected = relay_order_ids(setup.pool(), None).await?;
    let ids: Vec<&str> = received.iter().map(|r| r.msg_id.as_str()).collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "the stream holds duplicates");
    assert_eq!(
        ids.len(),
        expected.len(),
        "stream and events table differ in size"
    );
    if let Some(at) = ids.iter().zip(&expected).position(|(id, want)| id != want) {
        panic!(
            "relay order broken at message {at}: {} where {} belongs",
            ids[at], expected[at]
        );
    }
    let mut last_sequence: HashMap<&str, i64> = HashMap::new();
    for message in &received {
        let envelope = &message.envelope;
        assert_eq!(
            message.msg_id, envelope.event_id,
            "Nats-Msg-Id is not the event id"
        );
        assert_eq!(message.correlation_id.as_deref(), envelope.correlation_id());
        let previous = last_sequence.insert(&envelope.aggregate_id, envelope.sequence);
        assert!(
            previous.is_none_or(|previous| previous < envelope.sequence),
            "{} arrived after sequence {previous:?} of its aggregate",
            envelope.event_id
        );
    }
    Ok(received.len())
}

/// The stored checkpoint's `published` count, and whether it sits on the last row.
async fn checkpoint(setup: &Setup) -> anyhow::Result<Option<(i64, bool)>> {
    sqlx::query_as(
        "SELECT c.published,
                (c.transaction_id, c.global_position) =
                (SELECT transaction_id, global_position FROM events
                  ORDER BY transaction_id DESC, global_position DESC LIMIT 1)
           FROM relay_checkpoints c WHERE c.stream = $1",
    )
    .bind(&setup.stream.name)
    .fetch_optional(setup.pool())
    .await
    .context("read the relay checkpoint")
}

/// The sessions (backend pids) that hold an advisory lock in the test's database.
async fn advisory_lock_holders(pool: &PgPool) -> anyhow::Result<Vec<i32>> {
    let holders = sqlx::query_scalar(
        "SELECT pid FROM pg_locks
          WHERE locktype = 'advisory' AND granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(pool)
    .await?;
    Ok(holders)
}

/// Waits until exactly one session holds the relay lock and it is not `previous`;
/// returns its pid.
async fn wait_for_leader(pool: &PgPool, previous: Option<i32>) -> anyhow::Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let [holder] = advisory_lock_holders(pool).await?[..] {
            if Some(holder) != previous {
                return Ok(holder);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "no new relay leader within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a relay whose poll is an hour away, so that only a `NOTIFY` or the
/// relay looking again by itself sends events, and waits until it leads.
async fn lead_without_polling(setup: &Setup) -> anyhow::Result<RunningRelay> {
    let config = RelayConfig {
        poll_interval: Duration::from_secs(3600),
        ..RelayConfig::default()
    };
    let relay = RunningRelay::start(setup.relay(config));
    wait_for_leader(setup.pool(), None).await?;
    Ok(relay)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gap_is_skipped_while_an_early_transaction_stays_open() -> anyhow::Result<()> {
    let setup = Setup::new(&nats_url()).await?;
    let relay = RunningRelay::start(setup.relay(RelayConfig::default()));
    // Events committed before the long transaction starts show the relay is live.
    commit_events(setup.pool(), "before", 1..=10).await?;
    wait_for_count(&setup, 10).await?;

    let mut held_open = setup.pool().begin().await?;
    insert_events(&mut held_open, "held-open", 1..=1).await?;
    let held_open_xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *held_open)
        .await?;
    for transaction in 0..50 {
        let first = (transaction / 10) * 20 + 1;
        commit_events(
            setup.pool(),
            &format!("later-{}", transaction % 10),
            first..=first + 19,
        )
        .await?;
    }
    // Fifty commits (each a NOTIFY) and several polls later, still nothing past it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let published: Vec<String> = read_stream(&setup)
        .await?
        .into_iter()
        .map(|r| r.msg_id)
        .collect();
    assert_eq!(
        published,
        relay_order_ids(setup.pool(), Some(held_open_xid)).await?,
        "the relay published past a transaction that was still open"
    );
    assert_eq!(published.len(), 10);

    held_open.commit().await?;
    wait_for_count(&setup, 1_011).await?;
    relay.stop().await?;
    assert_eq!(assert_published_exactly_once_in_order(&setup).await?, 1_011);
    setup.finish().await
}

/// An event's NOTIFY arrives while another transaction of the same database, one
/// that writes no event, holds the relay's horizon below it. That transaction's end sends
/// no NOTIFY, and the poll here is an hour away: only the relay looking again by
/// itself publishes the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_held_back_by_an_unrelated_transaction_goes_out_when_it_ends() -> anyhow::Result<()>
{
    let setup = Setup::new(&nats_url()).await?;
    let relay = lead_without_polling(&setup).await?;
    commit_events(setup.pool(), "before", 1..=1).await?;
    wait_for_count(&setup, 1).await?;

    let mut unrelated = setup.pool().begin().await?;
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *unrelated)
        .await?;
    commit_events(setup.pool(), "held-back", 1..=1).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stream_count(&setup).await?, 1, "published past the horizon");

    unrelated.commit().await?;
    wait_for_count(&setup, 2).await?;
    relay.stop().await?;
    setup.finish().await
}

/// A transaction running in another database can never write this one's events:
/// however long it stays open, the relay publishes past it. The poll is an hour
/// away, so only the events' own NOTIFY sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_in_another_database_holds_nothing_back() -> anyhow::Result<()> {
    let setup = Setup::new(&nats_url()).await?;
    let relay = lead_without_polling(&setup).await?;

    let open_elsewhere = transaction_in_another_database(&setup.db.options()).await?;
    commit_events(setup.pool(), "not-held-back", 1..=3).await?;
    wait_for_count(&setup, 3).await?;

    open_elsewhere.close().await?;
    relay.stop().await?;
    assert_eq!(assert_published_exactly_once_in_order(&setup).await?, 3);
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_with_rollbacks_publish_every_committed_event_once_in_order(
) -> anyhow::Result<()> {
    let setup = Setup::new(&nats_url()).await?;
    let mut rng = seeded_rng("concurrent_writers");
    let relay = RunningRelay::start(setup.relay(RelayConfig::default()));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let rng = StdRng::seed_from_u64(rng.random());
            tokio::spawn(write_randomly(setup.pool().clone(), writer, rng))
        })
        .collect();
    let mut total = Tally::default();
    for writer in writers {
        let tally = writer.await??;
        total.committed += tally.committed;
        total.rolled_back += tally.rolled_back;
    }
    assert!(total.rolled_back > 0, "no transaction was rolled back");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(setup.pool())
        .await?;
    assert_eq!(stored, total.committed, "rolled-back events were stored");

    wait_for_count(&setup, total.committed as u64).await?;
    relay.stop().await?;
    let published = assert_published_exactly_once_in_order(&setup).await?;
    assert_eq!(published as i64, total.committed);
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_relay_repeatedly_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let setup = Setup::new(&nats_url()).await?;
    let mut rng = seeded_rng("killing_the_relay");
    // Small batches put more kills in the middle of a batch.
    let config = RelayConfig {
        batch_size: 100,
        ..RelayConfig::default()
    };
    let writer_rng = StdRng::seed_from_u64(rng.random());
    let pause = Duration::from_millis(5);
    let writer = tokio::spawn(write_events(setup.pool().clone(), 5_000, pause, writer_rng));
    let mut kills = 0;
    while !writer.is_finished() || kills < 20 {
        let relay = setup.relay(config).spawn(CancellationToken::new());
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..=200))).await;
        relay.abort();
        // Awaiting the aborted task drops it, and with it the lock connection.
        let _ = relay.await;
        kills += 1;
    }
    writer.await??;
    let (published_by_killed, _) = checkpoint(&setup).await?.unwrap_or_default();
    assert!(
        published_by_killed > 0,
        "no killed relay got a batch through: nothing was tested"
    );

    let relay = RunningRelay::start(setup.relay(config));
    wait_for_count(&setup, 5_000).await?;
    relay.stop().await?;
    assert_eq!(stream_count(&setup).await?, 5_000);
    assert_eq!(assert_published_exactly_once_in_order(&setup).await?, 5_000);
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_survives_a_nats_restart() -> anyhow::Result<()> {
    let mut nats = NatsServer::start()?;
    let mut setup = Setup::new(&nats.url()).await?;
    // An outage shorter than the ack timeout is hidden by the client's buffer; a
    // short timeout makes this one fail publishes, so the relay must retry.
    let ack_timeout = Duration::from_secs(1);
    setup.jetstream.set_timeout(ack_timeout);
    let rng = seeded_rng("nats_restart");
    let relay = RunningRelay::start(setup.relay(RelayConfig::default()));
    let pause = Duration::from_millis(10);
    let writer = tokio::spawn(write_events(setup.pool().clone(), 3_000, pause, rng));

    let published_before = wait_for_count(&setup, 300).await?;
    assert!(
        !writer.is_finished(),
        "the writer finished before NATS went down"
    );
    tokio::task::block_in_place(|| nats.kill());
    tokio::time::sleep(ack_timeout * 3).await;
    let stored_during_outage: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(setup.pool())
        .await?;
    assert!(
        stored_during_outage as u64 > published_before + 100,
        "too few events were written while NATS was down for the relay to fail"
    );
    tokio::task::block_in_place(|| nats.restart())?;

    // Killed again as soon as the backlog starts to drain in full pipelined
    // batches, to cut one in the middle: what follows a lost message must not
    // be stored ahead of it.
    wait_for_count(&setup, published_before + 1).await?;
    tokio::task::block_in_place(|| nats.kill());
    tokio::time::sleep(ack_timeout * 3).await;
    tokio::task::block_in_place(|| nats.restart())?;

    writer.await??;
    wait_for_count(&setup, 3_000).await?;
    relay.stop().await?;
    assert_eq!(assert_published_exactly_once_in_order(&setup).await?, 3_000);
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_relay_publishes_at_a_time() -> anyhow::Result<()> {
    let setup = Setup::new(&nats_url()).await?;
    let rng = seeded_rng("one_relay_at_a_time");
    let first = RunningRelay::start(setup.relay(RelayConfig::default()));
    wait_for_leader(setup.pool(), None).await?;
    let second = RunningRelay::start(setup.relay(RelayConfig::default()));
    let pause = Duration::from_millis(5);
    let writer = tokio::spawn(write_events(setup.pool().clone(), 2_000, pause, rng));

    wait_for_count(&setup, 200).await?;
    assert_eq!(advisory_lock_holders(setup.pool()).await?.len(), 1);
    let mut outsider = PgConnection::connect_with(&setup.db.options()).await?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(advisory_lock_key(&setup.stream.name))
        .fetch_one(&mut outsider)
        .await?;
    assert!(!taken, "the relay lock was free while relays were running");

    // The leader steps down mid-way; the second relay must take over.
    first.stop().await?;
    writer.await??;
    wait_for_count(&setup, 2_000).await?;
    assert_eq!(advisory_lock_holders(setup.pool()).await?.len(), 1);
    second.stop().await?;
    assert_eq!(
        advisory_lock_holders(setup.pool()).await?,
        Vec::<i32>::new(),
        "a stopped relay kept its lock"
    );

    assert_eq!(assert_published_exactly_once_in_order(&setup).await?, 2_000);
    // A batch published by both relays would have been counted twice.
    assert_eq!(checkpoint(&setup).await?, Some((2_000, true)));
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_lock_connection_dies_stops_and_leads_again() -> anyhow::Result<()> {
    let setup = Setup::new(&nats_url()).await?;
    let relay = RunningRelay::start(setup.relay(RelayConfig::default()));
    let leader = wait_for_leader(setup.pool(), None).await?;
    commit_events(setup.pool(), "before", 1..=300).await?;
    wait_for_count(&setup, 300).await?;

    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(leader)
        .fetch_one(setup.pool())
        .await?;
    assert!(terminated, "the lock session was not terminated");
    commit_events(setup.pool(), "after", 1..=300).await?;
    // The same relay notices, steps down and takes the lock on a new session.
    wait_for_leader(setup.pool(), Some(leader)).await?;
    wait_for_count(&setup, 600).await?;
    relay.stop().await?;
    assert_eq!(assert_published_exactly_once_in_order(&setup).await?, 600);
    setup.finish().await
}

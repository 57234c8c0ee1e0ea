//! Test support: a fresh database per test and private `nats-server` processes
//! that a test can kill and restart. Tests talk to real servers, never mocks.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgConnection, PgPool};

use async_nats::jetstream;

use crate::devstack::{self, LocalNats, LocalPostgres};
use crate::nats::StreamSpec;
use crate::Envelope;

/// The server tests create their databases on: `DATABASE_URL` (or the local default)
/// when it answers, otherwise a private PostgreSQL started once for this test
/// process and stopped when it exits. PostgreSQL only has to be installed.
pub fn server_options() -> PgConnectOptions {
    static SERVER: OnceLock<PgConnectOptions> = OnceLock::new();
    SERVER.get_or_init(find_or_start_postgres).clone()
}

/// The NATS server tests use: `NATS_URL` (or the local default) when it answers,
/// otherwise a private `nats-server -js` started once for this test process and
/// stopped when it exits. nats-server only has to be installed.
pub fn nats_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(find_or_start_nats).clone()
}

fn find_or_start_postgres() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    // A malformed DATABASE_URL in a test run is a set-up mistake worth stopping on.
    let configured =
        PgConnectOptions::from_str(&url).expect("DATABASE_URL is not a PostgreSQL URL");
    let probe = configured.clone();
    // Callers may be inside a runtime, which cannot be blocked on; the probe gets a
    // thread and a small runtime of its own.
    let answers = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .is_ok_and(|runtime| runtime.block_on(devstack::postgres_answers(&probe)))
    })
    .join()
    .unwrap_or(false);
    if answers {
        return configured;
    }
    let private = free_port()
        .and_then(LocalPostgres::start_temporary)
        .and_then(|server| {
            let options = server.options();
            eprintln!(
                "PostgreSQL does not answer at {url}; tests use a private one at {}",
                server.url()
            );
            server.stop_when_process_exits()?;
            Ok(options)
        });
    // Without a server no database test can run; say why instead of failing each one.
    private.unwrap_or_else(|error| panic!("no PostgreSQL for the tests: {error:#}"))
}

fn find_or_start_nats() -> String {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    if devstack::nats_answers(&url) {
        return url;
    }
    let private = free_port()
        .and_then(LocalNats::start_temporary)
        .map(|server| {
            let private_url = server.url();
            eprintln!("NATS does not answer at {url}; tests use a private one at {private_url}");
            server.stop_when_process_exits();
            private_url
        });
    // Without a server no messaging test can run; say why instead of failing each one.
    private.unwrap_or_else(|error| panic!("no NATS for the tests: {error:#}"))
}

/// A short random tag that keeps one test's names apart from another's.
pub fn unique_tag() -> String {
    uuid::Uuid::now_v7().simple().to_string()[20..].to_owned()
}

/// A database of its own for one test, dropped (with its connections) when the
/// value is dropped.
pub struct TestDb {
    /// The database's name.
    pub name: String,
    /// A pool on it.
    pub pool: PgPool,
    server: PgConnectOptions,
}

impl TestDb {
    /// Creates an empty database and runs the given migrators on it.
    pub async fn new(migrators: &[&Migrator]) -> anyhow::Result<Self> {
        let server = server_options();
        let name = format!("test_{}", uuid::Uuid::now_v7().simple());
        crate::db::create_database(&server, &name).await?;
        let pool = crate::db::connect(server.clone().database(&name), 32).await?;
        for migrator in migrators {
            crate::db::migrate(&pool, migrator).await?;
        }
        Ok(Self { name, pool, server })
    }

    /// Connection options for this database.
    pub fn options(&self) -> PgConnectOptions {
        self.server.clone().database(&self.name)
    }

    /// A URL for the server this database lives on, as `DATABASE_URL` takes it.
    pub fn server_url(&self) -> String {
        self.url_of("postgres")
    }

    /// A URL for this database, for processes started by the test.
    pub fn url(&self) -> String {
        self.url_of(&self.name)
    }

    fn url_of(&self, database: &str) -> String {
        let host = self.server.get_host();
        let port = self.server.get_port();
        let user = self.server.get_username();
        format!("postgres://{user}@{host}:{port}/{database}")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread
        // with its own small runtime does the clean-up.
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = runtime.block_on(crate::db::drop_database(&server, &name));
            }
        });
        let _ = cleanup.join();
    }
}

/// A stream namespace of its own for one test, so tests share a NATS server safely.
pub fn test_namespace() -> String {
    format!("t{}", unique_tag())
}

/// A service's stream in a namespace of its own, for tests of one stream.
pub fn test_stream(service: &str) -> StreamSpec {
    StreamSpec::in_namespace(&test_namespace(), service)
}

/// A JetStream context on the tests' NATS, with `stream` created.
pub async fn jetstream_with(stream: &StreamSpec) -> anyhow::Result<jetstream::Context> {
    let jetstream = jetstream::new(crate::nats::connect(&nats_url()).await?);
    crate::nats::ensure_stream(&jetstream, stream).await?;
    Ok(jetstream)
}

/// Waits until the durable consumer `durable` of `stream` has acked every
/// message up to `last`; panics after `timeout`.
pub async fn wait_for_ack_floor(
    jetstream: &jetstream::Context,
    stream: &StreamSpec,
    durable: &str,
    last: u64,
    timeout: Duration,
) {
    let waiting = async {
        loop {
            if let Ok(stream) = jetstream.get_stream(&stream.name).await {
                if let Ok(info) = stream.consumer_info(durable).await {
                    if info.ack_floor.stream_sequence >= last {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(timeout, waiting)
        .await
        .unwrap_or_else(|_| {
            panic!("consumer {durable} did not ack up to {last} within {timeout:?}")
        });
}

/// An event of the orders service with an empty payload, for tests of what
/// consumes events rather than of what they mean.
pub fn orders_event(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
) -> Envelope {
    Envelope {
        event_id: Envelope::event_id_for("orders", aggregate_type, aggregate_id, sequence),
        service: "orders".into(),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        global_position: 0,
        event_type: event_type.into(),
        event_version: "1.0".into(),
        payload: serde_json::json!({}),
        metadata: [("correlation_id".to_owned(), "test".to_owned())].into(),
        recorded_at: chrono::Utc::now(),
    }
}

/// Publishes `envelopes` in order as the relay does: each on its subject, with
/// its event id as `Nats-Msg-Id`, waiting for each ack.
///
/// A stream that a service under test is creating at the same moment can be
/// listed before it takes messages, and a publish then finds no stream. Like
/// the relay, this publishes again after a pause; `Nats-Msg-Id` keeps it once.
pub async fn publish(
    jetstream: &jetstream::Context,
    stream: &StreamSpec,
    envelopes: &[Envelope],
) -> anyhow::Result<()> {
    for envelope in envelopes {
        let mut attempt = 0;
        while let Err(error) = publish_once(jetstream, stream, envelope).await {
            attempt += 1;
            if !stream_not_ready(&error) || attempt == 20 {
                return Err(error.into());
            }
            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
        }
    }
    Ok(())
}

async fn publish_once(
    jetstream: &jetstream::Context,
    stream: &StreamSpec,
    envelope: &Envelope,
) -> Result<(), jetstream::context::PublishError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
    let body = serde_json::to_vec(envelope).expect("an envelope serializes");
    jetstream
        .publish_with_headers(stream.subject_for(envelope), headers, body.into())
        .await?
        .await?;
    Ok(())
}

fn stream_not_ready(error: &jetstream::context::PublishError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::PublishErrorKind::StreamNotFound
    )
}

/// A `nats-server -js` process owned by a test, on its own port and store
/// directory. It can be killed and restarted with its data intact, and it dies
/// with the test process even if the test never drops it.
pub struct NatsServer {
    port: u16,
    store_dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let store_dir = std::env::temp_dir().join(format!("shop-nats-{}", unique_tag()));
        std::fs::create_dir_all(&store_dir).context("create NATS store directory")?;
        let mut server = Self {
            port,
            store_dir,
            child: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server abruptly (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing the shell's stdin is its signal to kill the server.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store (after [`Self::kill`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let command = format!(
            "nats-server -a 127.0.0.1 -p {} -js -sd '{}' & server=$!; read _; kill -9 $server; wait $server",
            self.port,
            self.store_dir.display()
        );
        // The shell reads a pipe that only this process writes: when the pipe closes,
        // on kill() or when the test process exits, `read` returns and the shell
        // kills the server with it.
        let child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "start nats-server. {}",
                    devstack::install_hint("nats-server")
                )
            })?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store_dir);
    }
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something accepts connections on a local port.
pub fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("nothing listens on port {port} after {timeout:?}")
}

/// The rows of `table` that scans have read so far, those of `pool`'s own
/// connections included. Give it a pool of one connection: that connection
/// reports its counts when its next transaction ends, which this forces.
pub async fn rows_read(pool: &PgPool, table: &str) -> i64 {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await
        .expect("flush the table statistics");
    sqlx::query_scalar(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
           FROM pg_stat_user_tables WHERE relname = $1",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .expect("read the table statistics")
}

/// A handler that records the id of every event it is given in the table
/// `applied`, duplicates included.
pub struct Recording;

impl Recording {
    /// A database with the consumer tables and `applied (event_id text)`, which
    /// has no key, so that an event applied twice shows twice.
    pub async fn database() -> TestDb {
        let db = TestDb::new(&[&crate::db::READ_MODEL_MIGRATIONS])
            .await
            .expect("test database");
        sqlx::query("CREATE TABLE applied (event_id text NOT NULL)")
            .execute(&db.pool)
            .await
            .expect("create the applied table");
        db
    }

    /// [`Self::database`], and an orders stream of its own with a JetStream
    /// context on it: what a test of the consumer loop starts from.
    pub async fn with_orders_stream() -> (TestDb, jetstream::Context, StreamSpec) {
        let db = Self::database().await;
        let stream = test_stream("orders");
        let jetstream = jetstream_with(&stream).await.expect("test stream");
        (db, jetstream, stream)
    }

    /// Runs a consumer of `config` that records into `db`, until the returned
    /// token is cancelled.
    pub fn consume(
        db: &TestDb,
        jetstream: &jetstream::Context,
        config: crate::consumer::ConsumerConfig,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio_util::sync::CancellationToken,
    ) {
        let consumer = crate::consumer::Consumer::new(
            jetstream.clone(),
            db.pool.clone(),
            std::sync::Arc::new(Recording),
            config,
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        (tokio::spawn(consumer.run(shutdown.clone())), shutdown)
    }

    /// The ids it recorded, in id order.
    pub async fn applied(pool: &PgPool) -> Vec<String> {
        sqlx::query_scalar("SELECT event_id FROM applied ORDER BY event_id")
            .fetch_all(pool)
            .await
            .expect("read the applied events")
    }
}

#[async_trait]
impl crate::consumer::Handler for Recording {
    fn name(&self) -> &str {
        "recording"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
            .bind(&envelope.event_id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// A connection to the server's `postgres` database, inside a transaction that
/// holds an xid until the connection is closed or dropped: a transaction of
/// another database than the test's, older than anything the test writes next.
pub async fn transaction_in_another_database(
    options: &PgConnectOptions,
) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .context("connect to the postgres database")?;
    sqlx::raw_sql("BEGIN; SELECT pg_current_xact_id()")
        .execute(&mut connection)
        .await
        .context("hold an xid")?;
    Ok(connection)
}

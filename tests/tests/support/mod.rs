//! The whole shop in one process: every command service, the projection worker,
//! every query service and the gateway, each on port 0, with databases and a
//! stream namespace of their own.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use platform::service::Service;
use platform::testing::{test_namespace, TestDb};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running stack, stopped when dropped.
pub struct Stack {
    /// The gateway's base URL.
    pub gateway: String,
    /// The event stores, by service name, and the read models.
    pub databases: Vec<(&'static str, TestDb)>,
    /// An HTTP client for the gateway.
    pub client: reqwest::Client,
    /// The stack's stream namespace.
    pub namespace: String,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// The projection worker's command line, on its bound port, and its task's
    /// index in `tasks`, so that a test can crash it and start it again.
    worker: (Vec<String>, usize),
}

/// Settings every service of a test stack shares.
struct Shared {
    namespace: String,
    nats: String,
    shutdown: CancellationToken,
}

impl Shared {
    fn args(&self, binary: &str, database: Option<(&str, &TestDb)>) -> Vec<String> {
        let mut args = vec![
            binary.to_owned(),
            "--addr=127.0.0.1:0".to_owned(),
            format!("--nats-url={}", self.nats),
            format!("--stream-namespace={}", self.namespace),
        ];
        if let Some((flag, db)) = database {
            args.push(format!("--{flag}={}", db.url()));
        }
        args
    }
}

/// Builds a service from its command line and runs it; returns its base URL.
async fn start<C, F, Fut>(
    tasks: &mut Vec<JoinHandle<anyhow::Result<()>>>,
    shutdown: &CancellationToken,
    args: Vec<String>,
    build: F,
) -> String
where
    C: Parser,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    let name = args[0].clone();
    let config = C::try_parse_from(&args).expect("test configuration");
    let service = build(config)
        .await
        .unwrap_or_else(|e| panic!("{name} starts: {e:#}"));
    let url = format!("http://127.0.0.1:{}", service.port());
    tasks.push(tokio::spawn(service.run(shutdown.clone())));
    url
}

impl Stack {
    /// Starts every service on fresh databases; they are ready when this returns.
    pub async fn start() -> Self {
        let mut databases = Vec::new();
        for name in [
            "inventory",
            "customers",
            "orders",
            "payments",
            "read_models",
        ] {
            let db = TestDb::new(&[]).await.expect("test database");
            databases.push((name, db));
        }
        Self::start_on(databases, test_namespace()).await
    }

    /// Stops every service and starts them again on the same databases and streams.
    pub async fn restart(mut self) -> Self {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.await
                .expect("service task")
                .expect("service stopped cleanly");
        }
        let databases = std::mem::take(&mut self.databases);
        Self::start_on(databases, self.namespace.clone()).await
    }

    async fn start_on(databases: Vec<(&'static str, TestDb)>, namespace: String) -> Self {
        // `RUST_LOG=warn cargo test -p shop-tests --test saga -- --nocapture` shows
        // what the services log; without RUST_LOG the tests stay quiet.
        if std::env::var_os("RUST_LOG").is_some() {
            platform::telemetry::init(platform::telemetry::LogFormat::Pretty, "warn");
        }
        let db = |name: &str| &databases.iter().find(|(n, _)| *n == name).expect("db").1;
        let shared = Shared {
            namespace: namespace.clone(),
            nats: platform::testing::nats_url(),
            shutdown: CancellationToken::new(),
        };
        let (stop, mut tasks) = (shared.shutdown.clone(), Vec::new());
        let t = &mut tasks;

        let inventory = start(
            t,
            &stop,
            shared.args(
                "inventory",
                Some(("inventory-database-url", db("inventory"))),
            ),
            inventory::build,
        )
        .await;
        let customers = start(
            t,
            &stop,
            shared.args(
                "customers",
                Some(("customers-database-url", db("customers"))),
            ),
            customers::build,
        )
        .await;
        let orders = start(
            t,
            &stop,
            shared.args("orders", Some(("orders-database-url", db("orders")))),
            orders::build,
        )
        .await;
        let payments = start(
            t,
            &stop,
            shared.args("payments", Some(("payments-database-url", db("payments")))),
            payments::build,
        )
        .await;
        let worker_args = shared.args(
            "projection-worker",
            Some(("projections-database-url", db("read_models"))),
        );
        let projections = start(t, &stop, worker_args.clone(), projections::build).await;
        let worker_addr = format!("--addr={}", projections.trim_start_matches("http://"));
        let worker_args = worker_args
            .into_iter()
            .map(|arg| {
                if arg.starts_with("--addr=") {
                    worker_addr.clone()
                } else {
                    arg
                }
            })
            .collect();
        let worker = (worker_args, t.len() - 1);
        let catalog = start(
            t,
            &stop,
            shared.args("catalog", Some(("catalog-database-url", db("read_models")))),
            catalog::build,
        )
        .await;
        let orders_view = start(
            t,
            &stop,
            shared.args(
                "orders-view",
                Some(("orders-view-database-url", db("read_models"))),
            ),
            orders_view::build,
        )
        .await;
        let customers_view = start(
            t,
            &stop,
            shared.args(
                "customers-view",
                Some(("customers-view-database-url", db("read_models"))),
            ),
            customers_view::build,
        )
        .await;

        let mut gateway_args = shared.args("gateway", None);
        gateway_args.extend([
            format!("--inventory-url={inventory}"),
            format!("--customers-url={customers}"),
            format!("--orders-url={orders}"),
            format!("--payments-url={payments}"),
            format!("--catalog-url={catalog}"),
            format!("--orders-view-url={orders_view}"),
            format!("--customers-view-url={customers_view}"),
            format!("--projections-url={projections}"),
        ]);
        let gateway = start(t, &stop, gateway_args, gateway::build).await;

        Self {
            gateway,
            databases,
            namespace,
            client: reqwest::Client::new(),
            shutdown: stop,
            tasks,
            worker,
        }
    }

    /// Kills the projection worker as a crash would: its consumers are dropped
    /// wherever they are, with nothing finished or flushed.
    pub async fn crash_projection_worker(&mut self) {
        let task = &mut self.tasks[self.worker.1];
        task.abort();
        let _ = task.await;
    }

    /// Starts the projection worker again on its database and its address.
    pub async fn start_projection_worker(&mut self) {
        let mut started = Vec::new();
        let args = self.worker.0.clone();
        start(&mut started, &self.shutdown, args, projections::build).await;
        self.tasks[self.worker.1] = started.remove(0);
    }

    /// Stops every service and fails the test if one stopped with an error.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.await
                .expect("service task")
                .expect("service stopped cleanly");
        }
    }

    /// A database of the stack by service name (`read_models` for the read side).
    pub fn db(&self, name: &str) -> &TestDb {
        &self
            .databases
            .iter()
            .find(|(n, _)| *n == name)
            .expect("known database")
            .1
    }

    /// Waits until every stored event is on its stream and every durable consumer
    /// has nothing left to deliver or to be acked, twice in a row (a reaction may
    /// write new events just after another service was looked at), for at most
    /// 30 seconds.
    pub async fn wait_until_consumers_are_idle(&self) {
        let client = async_nats::connect(platform::testing::nats_url())
            .await
            .expect("nats");
        let jetstream = async_nats::jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut idle_passes = 0;
        while idle_passes < 2 {
            assert!(Instant::now() < deadline, "consumers did not become idle");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut idle = true;
            for service in ["customers", "inventory", "orders", "payments"] {
                idle = idle && self.service_is_idle(&jetstream, service).await;
            }
            idle_passes = if idle { idle_passes + 1 } else { 0 };
        }
    }

    /// Whether all of a service's events are on its stream and every durable
    /// consumer of that stream has delivered and seen acked everything.
    async fn service_is_idle(
        &self,
        jetstream: &async_nats::jetstream::Context,
        service: &str,
    ) -> bool {
        let spec = platform::nats::StreamSpec::in_namespace(&self.namespace, service);
        let Ok(mut stream) = jetstream.get_stream(&spec.name).await else {
            return false;
        };
        // A reaction's event may still wait for its relay after every consumer acked.
        let Ok(info) = stream.info().await else {
            return false;
        };
        if info.state.messages as i64 != self.stored_events(service).await {
            return false;
        }
        let names: Vec<String> = stream
            .consumer_names()
            .filter_map(|n| async { n.ok() })
            .collect()
            .await;
        for name in names {
            let Ok(mut consumer) = stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&name)
                .await
            else {
                return false;
            };
            let Ok(info) = consumer.info().await else {
                return false;
            };
            // An ephemeral consumer is a test reading the stream, not a service.
            let durable = info.config.durable_name.is_some();
            if durable && (info.num_pending > 0 || info.num_ack_pending > 0) {
                return false;
            }
        }
        true
    }

    /// Deletes every durable consumer on the stack's streams, so that the next
    /// start delivers each stream again from its first message.
    pub async fn forget_stream_positions(&self) {
        let client = async_nats::connect(platform::testing::nats_url())
            .await
            .expect("nats");
        let jetstream = async_nats::jetstream::new(client);
        for service in ["customers", "inventory", "orders", "payments"] {
            let spec = platform::nats::StreamSpec::in_namespace(&self.namespace, service);
            let stream = jetstream
                .get_stream(&spec.name)
                .await
                .expect("stream exists");
            let names: Vec<String> = stream
                .consumer_names()
                .filter_map(|n| async { n.ok() })
                .collect()
                .await;
            for name in names {
                stream
                    .delete_consumer(&name)
                    .await
                    .expect("delete consumer");
            }
        }
    }

    /// How many events a service's event store holds.
    pub async fn stored_events(&self, service: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db(service).pool)
            .await
            .expect("count events")
    }

    /// How many events of one type a service's event store holds.
    pub async fn count_events(&self, service: &str, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(&self.db(service).pool)
            .await
            .expect("count events")
    }

    /// The full URL of a gateway path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// GETs a gateway path and returns the status and JSON body.
    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("gateway answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs JSON to a gateway path and returns the status and JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("gateway answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls a gateway path until `done` holds for its JSON body, for at most
    /// 20 seconds, and returns that body.
    pub async fn eventually(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(path).await;
            if status.is_success() && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} did not reach the expected state; last answer {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

//! A service process: one HTTP listener plus the background tasks (relay,
//! consumers) that live and die with it, all stopped by one shutdown token.

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http;

type Start = Box<dyn FnOnce(CancellationToken) -> BoxedTask + Send>;
type BoxedTask = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// A bound, not yet running service.
pub struct Service {
    name: &'static str,
    listener: TcpListener,
    router: Router,
    tasks: Vec<(&'static str, Start)>,
}

impl Service {
    /// Binds `addr` (port 0 picks a free port) for `router`, wrapped in the
    /// common layers by the caller.
    pub async fn bind(
        name: &'static str,
        addr: std::net::SocketAddr,
        router: Router,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind {addr} for {name}"))?;
        Ok(Self {
            name,
            listener,
            router,
            tasks: Vec::new(),
        })
    }

    /// Adds a background task that runs until the token is cancelled. If it ends
    /// early, with or without an error, the whole service stops: a read model or
    /// relay that no longer moves must not look healthy.
    pub fn with_task<F, Fut>(mut self, name: &'static str, task: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks
            .push((name, Box::new(move |token| Box::pin(task(token)))));
        self
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Runs the tasks and serves HTTP until `shutdown` is cancelled or a task ends;
    /// then drains requests and waits for every task to finish its work in hand.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        tracing::info!(service = self.name, addr = ?self.listener.local_addr().ok(), "listening");
        let mut tasks = JoinSet::new();
        for (name, start) in self.tasks {
            let task = start(stop.clone());
            let stopped = stop.clone();
            tasks.spawn(async move {
                let outcome = task.await.with_context(|| format!("{name} failed"));
                if !stopped.is_cancelled() {
                    stopped.cancel();
                    return outcome.and(Err(anyhow::anyhow!("{name} stopped unexpectedly")));
                }
                outcome
            });
        }
        let served = http::serve(self.listener, self.router, stop.clone()).await;
        stop.cancel();
        let mut outcome = served;
        while let Some(joined) = tasks.join_next().await {
            let result = joined.context("background task panicked").and_then(|r| r);
            if let Err(error) = result {
                tracing::error!(
                    service = self.name,
                    error = format!("{error:#}"),
                    "stopped with an error"
                );
                outcome = outcome.and(Err(error));
            }
        }
        outcome
    }
}

/// What every command service connects to: its own event-store database (with the
/// consumer tables for its saga reactions), NATS, and its stream.
pub struct CommandInfra {
    /// The event store's pool.
    pub pool: sqlx::PgPool,
    /// Connection options of the event store, for the relay's own connections.
    pub options: sqlx::postgres::PgConnectOptions,
    /// The NATS connection.
    pub nats: async_nats::Client,
    /// JetStream on that connection.
    pub jetstream: async_nats::jetstream::Context,
    /// The stream the service's relay writes.
    pub stream: crate::nats::StreamSpec,
    /// Wakes the service's relay after its stores append (see [`Self::store`]).
    pub relay_wake: crate::relay::RelayWake,
}

impl CommandInfra {
    /// Connects to (and creates, when allowed) the service's database, migrates it,
    /// and connects to NATS.
    pub async fn connect(
        common: &crate::config::CommonArgs,
        database: &crate::db::DatabaseSpec,
        override_url: Option<&str>,
        pool_size: u32,
        stream: crate::nats::StreamSpec,
    ) -> anyhow::Result<Self> {
        let server = common.server()?;
        let options = common.database(override_url, database.name)?;
        let pool = crate::db::connect_or_create(&server, options.clone(), pool_size).await?;
        crate::db::migrate(&pool, &crate::db::EVENT_STORE_MIGRATIONS).await?;
        crate::db::migrate(&pool, &crate::db::READ_MODEL_MIGRATIONS).await?;
        let nats = crate::nats::connect(&common.nats_url).await?;
        Ok(Self {
            pool,
            options,
            jetstream: async_nats::jetstream::new(nats.clone()),
            nats,
            stream,
            relay_wake: crate::relay::RelayWake::default(),
        })
    }

    /// `/readyz` checks the event store and NATS.
    pub fn readiness(&self) -> http::Readiness {
        http::Readiness {
            databases: vec![self.pool.clone()],
            nats: Some(self.nats.clone()),
        }
    }

    /// `POST|GET /api/admin/relay/republish`: republish the service's whole log into
    /// its stream, and follow the progress.
    pub fn relay_admin(&self) -> axum::Router {
        crate::relay::admin_router(self.pool.clone(), self.stream.name.clone())
    }

    /// The relay from this service's event store to its stream.
    pub fn relay(&self, service: &'static str) -> crate::relay::Relay {
        crate::relay::Relay::new(
            service,
            self.pool.clone(),
            self.options.clone(),
            self.jetstream.clone(),
            self.stream.clone(),
            crate::relay::RelayConfig::default(),
        )
        .with_wake(self.relay_wake.clone())
    }

    /// An event store of `A` that wakes this service's relay in memory after it
    /// appends, rather than through `NOTIFY`.
    pub fn store<A>(
        &self,
        service: &'static str,
        services: A::Services,
    ) -> crate::event_store::AggregateStore<A>
    where
        A: cqrs_es::Aggregate,
        A::Command: Clone,
        A::Event: domain::versioning::VersionedEvent,
    {
        crate::event_store::AggregateStore::new(service, self.pool.clone(), services)
            .with_relay_wake(self.relay_wake.clone())
    }
}

//! One task per projection: it runs the live consumers, and while a rebuild is in
//! progress (requested, or found on start after a crash) the rebuild's consumers
//! too, until they have caught up and the switch is made.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamErrorKind};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self, consumer};
use platform::config::CommonArgs;
use platform::consumer::{Consumer, ConsumerConfig};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{Status, Statuses};
use crate::app::{Projection, SourceSpec};
use crate::rebuild::{self, Versions};

/// How often a rebuild's progress is checked for having caught up.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);

/// Most events a rebuild's consumer applies per transaction. A rebuild reads a
/// stream that is all there already, and a handler that folds its batch (such
/// as `products`) writes each row once per batch, so large batches are what
/// make it fast. They also keep an order's later events in the batch that
/// placed it more often (decision 0031). Each batch commits within about 150 ms;
/// the cost is memory: the worker peaks near 200 MB during a rebuild, against
/// 14 MB at rest.
const REBUILD_BATCH_SIZE: usize = 16384;

/// Runs one projection's consumers and rebuilds.
pub struct Supervisor {
    /// The projection it runs.
    pub projection: &'static Projection,
    /// The read-model database.
    pub pool: PgPool,
    /// JetStream, for the consumers.
    pub jetstream: jetstream::Context,
    /// The settings that name the streams.
    pub common: CommonArgs,
    /// Where it records that the projection stopped or failed.
    pub statuses: Statuses,
    /// Woken when a rebuild is requested.
    pub wakeup: Arc<Notify>,
}

/// Consumers that run until their token is cancelled.
struct Running {
    token: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Cancels the consumers and waits until each has finished its batch in hand.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.token.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            joined.context("a consumer panicked")?;
        }
        Ok(())
    }

    /// Resolves when a consumer ends on its own, which only a panic makes it do;
    /// never once the consumers are cancelled.
    async fn ended(&mut self) -> anyhow::Error {
        let joined = self.tasks.join_next().await;
        if self.token.is_cancelled() {
            return std::future::pending().await;
        }
        match joined {
            Some(Err(error)) => anyhow::Error::new(error).context("a consumer panicked"),
            _ => anyhow::anyhow!("a consumer stopped unexpectedly"),
        }
    }
}

impl Supervisor {
    /// Runs until `shutdown` is cancelled, or fails when a consumer dies.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let outcome = self.supervise(&shutdown).await;
        let status = match outcome {
            Ok(()) => Status::Stopped,
            Err(_) => Status::Failed,
        };
        self.statuses.set(self.projection.name, status);
        outcome
    }

    async fn supervise(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut live = self.start_live(shutdown);
        let mut first = true;
        loop {
            let Some(versions) = self.versions(shutdown).await else {
                break;
            };
            match versions.rebuild {
                Some(rebuild) => {
                    live = self.rebuild(live, rebuild.target_version, shutdown).await?;
                }
                None if first => self.forget_finished_rebuild().await,
                None => {}
            }
            first = false;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = self.wakeup.notified() => {}
                error = live.ended() => return Err(error),
            }
        }
        live.stop().await
    }

    /// The projection's versions, retried while PostgreSQL fails; `None` when
    /// cancelled first.
    async fn versions(&self, shutdown: &CancellationToken) -> Option<Versions> {
        loop {
            match rebuild::versions(&self.pool, self.projection.name).await {
                Ok(versions) => return Some(versions),
                Err(error) => tracing::warn!(
                    projection = self.projection.name,
                    error = format!("{error:#}"),
                    "cannot read the projection's versions"
                ),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// A crash right after a switch leaves the rebuild's NATS consumers behind.
    async fn forget_finished_rebuild(&self) {
        let deleted = rebuild::delete_consumers(&self.jetstream, &self.common, self.projection);
        if let Err(error) = deleted.await {
            tracing::warn!(
                projection = self.projection.name,
                error = format!("{error:#}"),
                "cannot delete the consumers of a finished rebuild"
            );
        }
    }

    /// Runs the rebuild's consumers beside the live ones until they have caught
    /// up, then switches. Returns the live consumers that run afterwards; on
    /// shutdown the rebuild stays recorded and resumes on the next start.
    async fn rebuild(
        &self,
        mut live: Running,
        target: i32,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Running> {
        let name = self.projection.name;
        tracing::info!(projection = name, target, "rebuilding");
        let mut rebuilding = self.start_rebuild(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    rebuilding.stop().await?;
                    return Ok(live);
                }
                error = live.ended() => return Err(error),
                error = rebuilding.ended() => return Err(error),
                _ = tokio::time::sleep(PROGRESS_INTERVAL) => {}
            }
            match self.caught_up().await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(
                        projection = name,
                        error = format!("{error:#}"),
                        "cannot read the rebuild's progress"
                    );
                    continue;
                }
            }
            live.stop().await?;
            rebuilding.stop().await?;
            match self.switch(target).await {
                Ok(()) => return Ok(self.start_live(shutdown)),
                Err(error) => {
                    tracing::warn!(
                        projection = name,
                        error = format!("{error:#}"),
                        "switch failed; retrying"
                    );
                    live = self.start_live(shutdown);
                    rebuilding = self.start_rebuild(shutdown);
                }
            }
        }
    }

    /// Whether every rebuild consumer has applied and acked all it can see.
    async fn caught_up(&self) -> anyhow::Result<bool> {
        for source in self.projection.sources {
            let durable = source.rebuild_durable_name();
            let info = consumer_info(&self.jetstream, &self.stream_name(source), &durable).await?;
            match info {
                Some(info) if info.num_pending == 0 && info.num_ack_pending == 0 => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// With every consumer of the projection stopped: points each live durable
    /// just after what both the old and the new version have applied, then swaps
    /// the tables. Either version is then right whatever the live durable
    /// replays, since its offsets skip what it already holds, so a crash anywhere
    /// in between loses nothing.
    async fn switch(&self, target: i32) -> anyhow::Result<()> {
        for source in self.projection.sources {
            let stream = self.stream_name(source);
            let live = ack_floor(&self.jetstream, &stream, source.durable_name).await?;
            let rebuilt =
                ack_floor(&self.jetstream, &stream, &source.rebuild_durable_name()).await?;
            let consumer = self.consumer(source.consumer_config(source.durable_name, &self.common));
            consumer.reposition(live.min(rebuilt) + 1).await?;
        }
        rebuild::switch(&self.pool, self.projection, target).await?;
        if let Err(error) =
            rebuild::delete_consumers(&self.jetstream, &self.common, self.projection).await
        {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot delete the rebuild's consumers; the next start does"
            );
        }
        Ok(())
    }

    fn start_live(&self, shutdown: &CancellationToken) -> Running {
        self.start(shutdown, |source| {
            self.consumer(source.consumer_config(source.durable_name, &self.common))
        })
    }

    fn start_rebuild(&self, shutdown: &CancellationToken) -> Running {
        let search_path = rebuild::search_path(self.projection);
        self.start(shutdown, |source| {
            let mut config = source.consumer_config(&source.rebuild_durable_name(), &self.common);
            config.search_path = Some(search_path.clone());
            config.batch_size = REBUILD_BATCH_SIZE;
            // Nobody reads the rebuilt tables before the switch.
            config.announce_changes = false;
            self.consumer(config)
        })
    }

    fn start(
        &self,
        shutdown: &CancellationToken,
        consumer: impl Fn(&SourceSpec) -> Consumer,
    ) -> Running {
        let token = shutdown.child_token();
        let mut tasks = JoinSet::new();
        for source in self.projection.sources {
            tasks.spawn(consumer(source).run(token.clone()));
        }
        Running { token, tasks }
    }

    fn consumer(&self, config: ConsumerConfig) -> Consumer {
        let handler = (self.projection.handler)();
        Consumer::new(self.jetstream.clone(), self.pool.clone(), handler, config)
    }

    fn stream_name(&self, source: &SourceSpec) -> String {
        self.common.stream(source.service).name
    }
}

/// The stream sequence up to which a durable consumer has had everything acked;
/// 0 when it or its stream does not exist.
async fn ack_floor(
    jetstream: &jetstream::Context,
    stream: &str,
    durable: &str,
) -> anyhow::Result<u64> {
    let info = consumer_info(jetstream, stream, durable).await?;
    Ok(info.map_or(0, |info| info.ack_floor.stream_sequence))
}

/// A durable consumer's state, or `None` when it or its stream does not exist.
pub async fn consumer_info(
    jetstream: &jetstream::Context,
    stream: &str,
    durable: &str,
) -> anyhow::Result<Option<consumer::Info>> {
    let handle = match jetstream.get_stream(stream).await {
        Ok(handle) => handle,
        Err(error) => {
            return match error.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(None)
                }
                _ => Err(error).with_context(|| format!("find stream {stream}")),
            }
        }
    };
    match handle.consumer_info(durable).await {
        Ok(info) => Ok(Some(info)),
        Err(error) => match error.kind() {
            ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound => Ok(None),
            ConsumerInfoErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::CONSUMER_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(error).with_context(|| format!("read consumer {durable}")),
        },
    }
}

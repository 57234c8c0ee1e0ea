//! The relay: it tails the service's events table (the outbox) and publishes every
//! committed event to the service's JetStream stream, once and in commit order.
//!
//! - Rows are read in `(transaction_id, global_position)` order and only below the
//!   oldest running transaction, so a transaction that commits late is never skipped.
//! - The checkpoint moves only after JetStream acknowledged the whole batch; a crash
//!   republishes from it, and `Nats-Msg-Id` de-duplication absorbs the repeats.
//! - One relay per stream runs at a time, elected with a session advisory lock.
//! - On request it republishes the whole log into an empty or lost stream
//!   (see [`republish`](self::republish)).

mod admin;
mod leader;
mod outbox;
mod publish;
pub mod republish;
mod wake;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::nats::StreamSpec;

pub use admin::{admin_router, REPUBLISH_PATH};
pub use leader::advisory_lock_key;
use leader::Leadership;
use outbox::{Checkpoint, Wakeups};
pub use publish::{CAUSATION_ID_HEADER, CORRELATION_ID_HEADER};
pub use republish::{RepublishProgress, RepublishStatus};
pub use wake::RelayWake;

/// First delay before retrying after a failed publish; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest delay between two publish attempts while NATS is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// First pause before looking again for events held back by a running transaction;
/// it doubles up to [`MAX_HELD_BACK_RECHECK`] while they stay held back.
const HELD_BACK_RECHECK: Duration = Duration::from_millis(2);
/// Longest pause between two looks at events held back. Under load some short
/// transaction in the cluster nearly always holds the horizon, and each look
/// that found it held doubled the pause: an event then waited up to 60 ms per
/// saga hop after its blocker had ended. A long blocker costs one cheap query
/// per this interval instead.
const MAX_HELD_BACK_RECHECK: Duration = Duration::from_millis(8);
/// How long a batch in flight may still take to finish once shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How the relay batches and how often it looks for events without a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Most events read and published per batch.
    pub batch_size: usize,
    /// How often the relay looks for new events when no `NOTIFY` woke it, for
    /// instance when a long transaction ended without appending anything.
    pub poll_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Publishes one service's event store to its JetStream stream.
pub struct Relay {
    service: String,
    pool: PgPool,
    options: PgConnectOptions,
    jetstream: jetstream::Context,
    stream: StreamSpec,
    config: RelayConfig,
    wake: RelayWake,
}

impl Relay {
    /// A relay for `service`'s events behind `pool`. `options` point at the same
    /// database and open the relay's own lock and `LISTEN` connections.
    pub fn new(
        service: impl Into<String>,
        pool: PgPool,
        options: PgConnectOptions,
        jetstream: jetstream::Context,
        stream: StreamSpec,
        config: RelayConfig,
    ) -> Self {
        Self {
            service: service.into(),
            pool,
            options,
            jetstream,
            stream,
            // A batch of nothing would never move the checkpoint.
            config: RelayConfig {
                batch_size: config.batch_size.max(1),
                ..config
            },
            wake: RelayWake::default(),
        }
    }

    /// The relay woken by the stores of its own process rather than by their
    /// `NOTIFY` while it leads (see [`RelayWake`]).
    pub fn with_wake(self, wake: RelayWake) -> Self {
        Self { wake, ..self }
    }

    /// Runs [`Self::run`] on its own task.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<anyhow::Result<()>> {
        tokio::spawn(self.run(shutdown))
    }

    /// Waits for leadership, then relays until `shutdown` is cancelled. A relay that
    /// loses its lock connection stops publishing and goes back to waiting.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let span =
            tracing::info_span!("relay", service = %self.service, stream = %self.stream.name);
        async move {
            let key = advisory_lock_key(&self.stream.name);
            while let Some(leadership) = Leadership::acquire(&self.options, key, &shutdown).await {
                tracing::info!("relay is the leader, publishing");
                match self.lead(leadership, &shutdown).await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "relay lost leadership")
                    }
                }
                if cancelled_during(leader::ACQUIRE_RETRY, &shutdown).await {
                    break;
                }
            }
            tracing::info!("relay stopped");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Relays for one leadership term. Returns `Ok` on shutdown and an error when
    /// leadership can no longer be trusted.
    async fn lead(
        &self,
        leadership: Leadership,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let wakeups = Wakeups::listen(&self.options, self.wake.notify()).await?;
        let _leading = self.wake.lead();
        // Read only now: the previous leader's last checkpoint is committed by the
        // time its lock is released.
        let checkpoint = outbox::load_checkpoint(&self.pool, &self.stream.name).await?;
        let mut term = Term {
            relay: self,
            leadership,
            checkpoint,
            stream_ready: false,
            republish_target: None,
            look_for_republish: true,
        };
        let mut backoff = MIN_BACKOFF;
        let mut recheck = HELD_BACK_RECHECK;
        loop {
            term.leadership.check().await?;
            let before = term.checkpoint;
            let stopped = match term.drain(shutdown, wakeups.take_republish()).await {
                Ok(drained) => {
                    backoff = MIN_BACKOFF;
                    if term.checkpoint != before {
                        // Under steady load some transaction always holds the
                        // horizon; what counts is that events keep going out.
                        recheck = HELD_BACK_RECHECK;
                    }
                    let pause = match drained {
                        Drained::CaughtUp => {
                            recheck = HELD_BACK_RECHECK;
                            self.config.poll_interval
                        }
                        Drained::HeldBack => {
                            let pause = recheck;
                            recheck = (recheck * 2)
                                .min(MAX_HELD_BACK_RECHECK)
                                .min(self.config.poll_interval);
                            pause
                        }
                    };
                    tokio::select! {
                        _ = shutdown.cancelled() => true,
                        _ = wakeups.next(pause) => false,
                    }
                }
                Err(Failure::LostLeadership(error)) => return Err(error),
                Err(Failure::Retry(error)) => {
                    tracing::warn!(error = format!("{error:#}"), retry_in = ?backoff, "relay batch failed");
                    let pause = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    cancelled_during(pause, shutdown).await
                }
            };
            if stopped {
                break;
            }
        }
        term.leadership.release().await;
        Ok(())
    }
}

/// How a drain ended when nothing failed.
enum Drained {
    /// Every committed event that the relay may read is published.
    CaughtUp,
    /// Committed events wait behind an older transaction still running elsewhere
    /// in the cluster, such as a consumer's batch. Waiting for the next poll would
    /// add up to its whole interval to each hop of the saga, so look again soon.
    HeldBack,
}

/// Why a drain stopped early.
enum Failure {
    /// The lock connection failed or the checkpoint moved under us: stop publishing.
    LostLeadership(anyhow::Error),
    /// NATS or a read failed: retry from the stored checkpoint after a pause.
    Retry(anyhow::Error),
}

/// The state of one leadership term.
struct Term<'a> {
    relay: &'a Relay,
    leadership: Leadership,
    checkpoint: Checkpoint,
    /// Whether the stream is known to exist; cleared after every failed publish so
    /// that a deleted stream is created again.
    stream_ready: bool,
    /// The last event of a republish under way: progress is counted until the
    /// checkpoint reaches it.
    republish_target: Option<Checkpoint>,
    /// Whether to read the republish requests before the next batch; kept until
    /// a read succeeds.
    look_for_republish: bool,
}

impl Term<'_> {
    /// Publishes batches until one comes back short, shutdown is requested, or a
    /// batch fails; first takes up a republish if one may have been requested.
    async fn drain(
        &mut self,
        shutdown: &CancellationToken,
        republish_may_be_requested: bool,
    ) -> Result<Drained, Failure> {
        let relay = self.relay;
        self.look_for_republish |= republish_may_be_requested;
        if self.look_for_republish {
            self.take_up_republish().await?;
            self.look_for_republish = false;
        }
        loop {
            let rows = outbox::read_batch(&relay.pool, self.checkpoint, relay.config.batch_size)
                .await
                .map_err(Failure::Retry)?;
            let full = rows.len() >= relay.config.batch_size;
            if rows.is_empty() {
                return self.caught_up_or_held_back().await;
            }
            let span = tracing::debug_span!("relay_batch", stream = %relay.stream.name, events = rows.len());
            let batch = self.relay_batch(rows).instrument(span);
            if finish_or_abandon(batch, shutdown)
                .await
                .transpose()?
                .is_none()
            {
                tracing::debug!("shutdown abandoned a batch; the next leader republishes it");
                return Ok(Drained::CaughtUp);
            }
            if shutdown.is_cancelled() {
                return Ok(Drained::CaughtUp);
            }
            if !full {
                return self.caught_up_or_held_back().await;
            }
        }
    }

    async fn caught_up_or_held_back(&self) -> Result<Drained, Failure> {
        let held_back = outbox::held_back(&self.relay.pool, self.checkpoint)
            .await
            .map_err(Failure::Retry)?;
        Ok(if held_back {
            Drained::HeldBack
        } else {
            Drained::CaughtUp
        })
    }

    /// Starts a requested republish, or carries on with one that an earlier leader
    /// started. Runs between batches, so nothing else publishes meanwhile.
    async fn take_up_republish(&mut self) -> Result<(), Failure> {
        let relay = self.relay;
        let pending = republish::pending(&relay.pool, &relay.stream.name)
            .await
            .map_err(Failure::Retry)?;
        match pending {
            None => {}
            Some(republish::Pending::Running { target }) => self.republish_target = Some(target),
            Some(republish::Pending::Requested) => {
                let started = republish::start(
                    self.leadership.connection(),
                    &relay.pool,
                    &relay.jetstream,
                    &relay.stream,
                )
                .await
                .map_err(Failure::Retry)?;
                self.checkpoint = started.from;
                self.republish_target = started.target;
                self.stream_ready = true;
            }
        }
        Ok(())
    }

    /// Publishes one batch, waits for every ack, then stores the checkpoint through
    /// the lock connection, so only the current leader can move it.
    async fn relay_batch(
        &mut self,
        rows: Vec<crate::event_store::EventRow>,
    ) -> Result<(), Failure> {
        let relay = self.relay;
        let Some(last) = rows.last().map(Checkpoint::of) else {
            return Ok(());
        };
        let events = rows.len();
        if !self.stream_ready {
            crate::nats::ensure_stream(&relay.jetstream, &relay.stream)
                .await
                .map_err(Failure::Retry)?;
            self.stream_ready = true;
        }
        let published =
            publish::publish_batch(&relay.jetstream, &relay.stream, &relay.service, rows).await;
        if let Err(error) = published {
            self.stream_ready = false;
            return Err(Failure::Retry(error));
        }
        self.leadership
            .store_checkpoint(&relay.stream.name, last, events)
            .await
            .map_err(Failure::LostLeadership)?;
        self.checkpoint = last;
        if let Some(target) = self.republish_target {
            let done = republish::advance(
                self.leadership.connection(),
                &relay.stream.name,
                target,
                last,
                events,
            )
            .await
            .map_err(Failure::LostLeadership)?;
            if done {
                self.republish_target = None;
            }
        }
        tracing::debug!(
            events,
            transaction_id = last.transaction_id,
            global_position = last.global_position,
            "relay batch published"
        );
        Ok(())
    }
}

/// Runs `work` to the end, unless shutdown comes first and it then takes longer
/// than [`SHUTDOWN_GRACE`]; `None` means it was abandoned.
async fn finish_or_abandon<F: Future>(work: F, shutdown: &CancellationToken) -> Option<F::Output> {
    tokio::pin!(work);
    tokio::select! {
        output = &mut work => Some(output),
        _ = shutdown.cancelled() => tokio::time::timeout(SHUTDOWN_GRACE, work).await.ok(),
    }
}

/// Sleeps for `delay`; true when shutdown came first.
async fn cancelled_during(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

//! The JetStream consumer loop that feeds read models.
//!
//! A durable pull consumer fetches a batch, applies it and its checkpoint in one
//! PostgreSQL transaction, and acks only after the commit. An event whose aggregate
//! sequence is already recorded in `consumer_offsets` is skipped, so redeliveries
//! change nothing: the effect of each event is applied exactly once.
//!
//! Per-aggregate order needs more than `max_ack_pending`: a delivery lost in
//! flight, or a partial batch left unacked by a crash, comes back only after
//! `ack_wait`, behind newer events. So the consumer rewinds to its last
//! contiguous ack when it starts with unacked messages, and when an aggregate's
//! next event is not the one it expects. A consumer of some event types only
//! cannot tell that from its aggregates' sequences, and rewinds instead when
//! JetStream's numbering of its deliveries skips one (decision 0026).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::nats::{self, StreamSpec};
use crate::Envelope;

mod retry;

pub(crate) use retry::is_infrastructure;

/// A read model fed by a [`Consumer`].
#[async_trait]
pub trait Handler: Send + Sync {
    /// The read model's name, as it appears in logs.
    fn name(&self) -> &str;

    /// Applies one event inside the batch's transaction. An error rolls back the
    /// event, which is retried with backoff; after `max_attempts` it is parked as
    /// a dead letter (see [`crate::dead_letters`]). An error caused by a lost
    /// database connection is retried forever instead.
    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()>;

    /// Applies a batch's new events, in stream order, inside the batch's
    /// transaction. The default applies them one by one. A read model may fold
    /// them and write each row once, as long as the effect is that of
    /// [`Self::apply`] on each in turn: after an error the consumer goes back to
    /// `apply`, event by event, to find the event at fault.
    async fn apply_all(&self, tx: &mut PgConnection, events: &[&Envelope]) -> anyhow::Result<()> {
        for envelope in events {
            let span = tracing::info_span!(
                "event",
                event_id = %envelope.event_id,
                correlation_id = envelope.correlation_id().unwrap_or(""),
            );
            self.apply(tx, envelope)
                .instrument(span)
                .await
                .map_err(|error| retry::HandlerFailed::new(error, envelope))
                .with_context(|| format!("apply event {}", envelope.event_id))?;
        }
        Ok(())
    }
}

/// Where a consumer reads from and how it paces itself.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The JetStream durable name; it also keys this consumer's rows in
    /// `consumer_checkpoints` and `consumer_offsets`.
    pub durable_name: String,
    /// The stream to read, created when missing.
    pub stream: StreamSpec,
    /// The subjects whose events the handler gets, such as `orders.Order.>`.
    /// JetStream delivers the whole stream, and the consumer passes over (and
    /// acks) the other subjects: NATS 2.9 counts a filtered consumer's pending
    /// messages by scanning the stream, at every delivery and every info request
    /// (decision 0020).
    pub filter_subject: String,
    /// Most messages per batch; the consumer's `max_ack_pending` is twice that,
    /// for the batch in hand and the next one, fetched meanwhile.
    pub batch_size: usize,
    /// How long one fetch waits for a first message before asking again.
    pub fetch_expiry: Duration,
    /// How long JetStream waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Whether the filter delivers every event of each aggregate (the default).
    /// Then a gap in an aggregate's sequences means an earlier event went astray
    /// in flight, and the consumer rewinds rather than apply out of order.
    /// [`Self::only_event_types`] turns it off. An event missing from the stream
    /// for good stalls the consumer, with a warning per attempt.
    pub expect_every_event: bool,
    /// The event types the handler reacts to, when it is some only (see
    /// [`Self::only_event_types`]); `None` for every type of the subjects.
    pub event_types: Option<Vec<String>>,
    /// How many times a handler may fail on one event before the event is parked
    /// as a dead letter. Failures of PostgreSQL itself never count.
    pub max_attempts: u32,
    /// The first pause between attempts; it doubles after each one (up to 30 s).
    pub retry_backoff: Duration,
    /// A `search_path` set for each batch's transaction, such as
    /// `rebuild_orders, public`: the handler's unqualified tables then resolve to
    /// another schema, while the checkpoint tables stay in `public`.
    pub search_path: Option<String>,
    /// Whether each batch that applies events announces the aggregates it moved
    /// (see [`crate::changes`]), so that readers waiting on `?min_version=` look
    /// again as it commits. For the read models that query services serve.
    pub announce_changes: bool,
}

impl ConsumerConfig {
    /// A configuration with the defaults: batches of 256, fetches that wait up to
    /// 5 s, and redelivery after 10 s without an ack.
    pub fn new(durable_name: &str, stream: StreamSpec, filter_subject: String) -> Self {
        Self {
            durable_name: durable_name.to_owned(),
            stream,
            filter_subject,
            batch_size: 256,
            fetch_expiry: Duration::from_secs(5),
            ack_wait: Duration::from_secs(10),
            expect_every_event: true,
            event_types: None,
            // 8 attempts pause 12.7 s in all, well past the 3 s that payments waits,
            // by failing and being retried, for a customer it has not heard of yet.
            max_attempts: 8,
            retry_backoff: Duration::from_millis(100),
            search_path: None,
            announce_changes: false,
        }
    }

    /// Hands the handler only events of these types, such as the few answers a
    /// saga reaction waits for among a product's many events. The others are
    /// passed over like other subjects, by the subject's last token: acked, but
    /// neither parsed nor recorded, so that a batch of them costs no
    /// transaction at all.
    ///
    /// An aggregate's sequences then have gaps by design, so the per-aggregate
    /// gap check is off (see [`Self::expect_every_event`]). What it guarded
    /// against, a delivery lost in flight, is caught instead by the consumer's
    /// delivery numbers: JetStream numbers every delivery of a consumer,
    /// redeliveries included, and the consumer rewinds when one is skipped.
    pub fn only_event_types(mut self, event_types: &[&str]) -> Self {
        self.event_types = Some(event_types.iter().map(|&t| t.to_owned()).collect());
        self.expect_every_event = false;
        self
    }
}

/// One durable consumer feeding one [`Handler`].
pub struct Consumer {
    jetstream: jetstream::Context,
    pool: PgPool,
    handler: Arc<dyn Handler>,
    config: ConsumerConfig,
    /// The offsets this consumer's last batches committed.
    recent: Mutex<RecentOffsets>,
}

/// What one fetch brought, sorted, or `None` when shutdown came first.
type Fetched = Option<anyhow::Result<Batch>>;

/// A fetch sorted by [`Fetcher::sort`]: the deliveries to apply, in stream
/// order, and the messages of other subjects, which are only acked.
struct Batch {
    deliveries: Vec<Delivery>,
    passed_over: Vec<jetstream::Message>,
    /// How many messages the fetch brought; a full fetch means the consumer is
    /// behind.
    fetched: usize,
    /// The delivery numbers the fetch brought.
    delivered: Delivered,
}

/// The consumer's delivery numbers in one fetch. JetStream numbers each delivery
/// of a consumer, redeliveries included, so a number skipped is a delivery lost
/// in flight: behind it, a cumulative ack would ack it unseen.
#[derive(Debug, Clone, Copy, Default)]
struct Delivered {
    /// The first and last delivery numbers; `None` for an empty fetch.
    range: Option<(u64, u64)>,
    /// Where a number was skipped inside the fetch: the one expected, and the one
    /// that came.
    skipped: Option<(u64, u64)>,
}

impl Delivered {
    /// Notes the next message's delivery number.
    fn note(&mut self, number: u64) {
        self.range = Some(match self.range {
            None => (number, number),
            Some((first, last)) => {
                if number != last + 1 && self.skipped.is_none() {
                    self.skipped = Some((last + 1, number));
                }
                (first, number)
            }
        });
    }

    /// Checks that this fetch goes on from `next`, the number expected after the
    /// fetches before, and without a skip; then moves `next` past it.
    fn follow(&self, next: &mut Option<u64>) -> Result<(), DeliverySkipped> {
        let Some((first, last)) = self.range else {
            return Ok(());
        };
        let skipped = match *next {
            Some(expected) if first != expected => Some((expected, first)),
            _ => self.skipped,
        };
        if let Some((expected, came)) = skipped {
            return Err(DeliverySkipped { expected, came });
        }
        *next = Some(last + 1);
        Ok(())
    }
}

/// A delivery went astray between JetStream and the consumer.
#[derive(Debug, thiserror::Error)]
#[error("delivery {expected} never arrived; delivery {came} came instead")]
struct DeliverySkipped {
    expected: u64,
    came: u64,
}

/// A message that carries an Envelope, with its place in the stream.
struct Delivery {
    message: jetstream::Message,
    envelope: Envelope,
    stream_sequence: u64,
}

/// An event arrived before an earlier one of its aggregate.
#[derive(Debug, thiserror::Error)]
#[error("{aggregate} is at sequence {last}, so {sequence} is early")]
struct SequenceGap {
    aggregate: String,
    last: i64,
    sequence: i64,
}

/// How an attempt to commit a batch ended.
enum Commit {
    Done,
    Cancelled,
    Gap,
}

/// Fetches a consumer's batches and sorts them, in the consumer's task or, to
/// overlap the commit of the batch before, in a task of its own.
#[derive(Clone)]
struct Fetcher {
    pull: PullConsumer,
    filter_subject: String,
    /// The event types to hand on; the others are passed over.
    event_types: Option<Arc<[String]>>,
    batch_size: usize,
    /// How long one fetch waits for a first message.
    expiry: Duration,
    shutdown: CancellationToken,
}

/// A fetch running in a task of its own; dropping it aborts the fetch.
struct Prefetch(AbortOnDropHandle<Fetched>);

impl Prefetch {
    /// What the fetch brought, once it has.
    async fn landed(self) -> Fetched {
        match self.0.await {
            Ok(fetched) => fetched,
            Err(joined) if joined.is_panic() => std::panic::resume_unwind(joined.into_panic()),
            // Only a runtime shutting down cancels the task.
            Err(_) => None,
        }
    }
}

impl Fetcher {
    /// One fetch, sorted; `None` when shutdown comes first. A fetch waits up to
    /// `expiry` for a first message, then returns at once with what is
    /// available, up to `batch_size`.
    async fn next(&self) -> Fetched {
        let fetched = tokio::select! {
            _ = self.shutdown.cancelled() => return None,
            fetched = self.fetch() => fetched,
        };
        Some(match fetched {
            Ok(messages) => Ok(self.sort(messages).await),
            Err(error) => Err(error),
        })
    }

    /// [`Self::next`] in a task of its own.
    fn spawn(&self) -> Prefetch {
        let fetcher = self.clone();
        Prefetch(AbortOnDropHandle::new(tokio::spawn(async move {
            fetcher.next().await
        })))
    }

    async fn fetch(&self) -> anyhow::Result<Vec<jetstream::Message>> {
        let mut batch = self
            .pull
            .fetch()
            .max_messages(self.batch_size)
            .expires(self.expiry)
            .messages()
            .await
            .map_err(|error| anyhow::anyhow!("request a batch: {error}"))?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => messages.push(message),
                Err(error) => anyhow::bail!("receive a batch: {error}"),
            }
        }
        Ok(messages)
    }

    /// Keeps the messages of the consumer's subjects that carry an Envelope,
    /// sets the others aside, and terminates those that do not parse, which no
    /// retry could ever apply.
    ///
    /// Parsing thousands of events takes milliseconds, so it runs on a blocking
    /// thread rather than hold up a runtime thread that the commit in progress
    /// may need.
    async fn sort(&self, messages: Vec<jetstream::Message>) -> Batch {
        let fetched = messages.len();
        let filter = self.filter_subject.clone();
        let event_types = self.event_types.clone();
        let parsing = tokio::task::spawn_blocking(move || {
            let (mut deliveries, mut passed_over, mut malformed) = (vec![], vec![], vec![]);
            let mut delivered = Delivered::default();
            for message in messages {
                let info = message.info();
                if let Ok(info) = &info {
                    delivered.note(info.consumer_sequence);
                }
                let stream_sequence = info.map(|info| info.stream_sequence);
                if !subject_matches(&filter, &message.subject)
                    || !is_one_of(event_types.as_deref(), &message.subject)
                {
                    passed_over.push(message);
                    continue;
                }
                match parse(&message, stream_sequence) {
                    Ok((envelope, stream_sequence)) => deliveries.push(Delivery {
                        message,
                        envelope,
                        stream_sequence,
                    }),
                    Err(error) => malformed.push((message, error)),
                }
            }
            (deliveries, passed_over, malformed, delivered)
        });
        let (deliveries, passed_over, malformed, delivered) = match parsing.await {
            Ok(sorted) => sorted,
            Err(joined) => std::panic::resume_unwind(joined.into_panic()),
        };
        terminate(malformed).await;
        Batch {
            deliveries,
            passed_over,
            fetched,
            delivered,
        }
    }
}

impl Consumer {
    /// A consumer that writes through `pool`, which must hold the read-model
    /// migrations ([`crate::db::READ_MODEL_MIGRATIONS`]) and the handler's tables.
    pub fn new(
        jetstream: jetstream::Context,
        pool: PgPool,
        handler: Arc<dyn Handler>,
        config: ConsumerConfig,
    ) -> Self {
        Self {
            jetstream,
            pool,
            handler,
            recent: Mutex::default(),
            config,
        }
    }

    /// Consumes until `shutdown` is cancelled. The batch in hand is finished and
    /// acked first; one still failing is left unacked for redelivery. Failures of
    /// NATS or PostgreSQL are retried, never returned.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = tracing::info_span!(
            "consumer",
            consumer = %self.config.durable_name,
            read_model = self.handler.name(),
        );
        async move {
            let mut backoff = Backoff::new();
            loop {
                match self.subscribe().await {
                    Ok(pull) => {
                        tracing::info!(filter = %self.config.filter_subject, "consuming");
                        if !self.consume(&pull, &mut backoff, &shutdown).await {
                            break;
                        }
                    }
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "cannot subscribe"),
                }
                if !backoff.wait(&shutdown).await {
                    break;
                }
            }
            tracing::info!("consumer stopped");
        }
        .instrument(span)
        .await
    }

    /// Fetches and applies batch after batch. Returns `false` when cancelled, and
    /// `true` after a failed fetch or a sequence gap: deliveries went astray, and
    /// only a new subscription (see [`Self::subscribe`]) gets them back in order.
    ///
    /// While the consumer is behind (its batches come full), the next batch is
    /// fetched and parsed in a task of its own while the one in hand commits, and
    /// the batch done with is freed in another, so that NATS delivering and the
    /// consumer's own work overlap the database's (decision 0019). Batches are
    /// still applied one after the other, in stream order.
    async fn consume(
        &self,
        pull: &PullConsumer,
        backoff: &mut Backoff,
        shutdown: &CancellationToken,
    ) -> bool {
        let fetcher = Fetcher {
            pull: pull.clone(),
            filter_subject: self.config.filter_subject.clone(),
            event_types: self.config.event_types.as_deref().map(Arc::from),
            batch_size: self.config.batch_size,
            expiry: self.config.fetch_expiry,
            shutdown: shutdown.clone(),
        };
        // Checked only where the aggregates' sequences cannot be: a consumer of
        // some event types (see `ConsumerConfig::only_event_types`).
        let check_deliveries = !self.config.expect_every_event;
        let mut next_delivery = None;
        let mut fetched = fetcher.next().await;
        loop {
            let batch = match fetched {
                None => return false,
                Some(Ok(batch)) => batch,
                Some(Err(error)) => {
                    tracing::warn!(error = format!("{error:#}"), "fetch failed");
                    return true;
                }
            };
            *backoff = Backoff::new();
            if check_deliveries {
                if let Err(skipped) = batch.delivered.follow(&mut next_delivery) {
                    // Unacked, the batch and the lost delivery come back in order
                    // from the new subscription.
                    tracing::warn!(%skipped, "a delivery went astray, rewinding");
                    return true;
                }
            }
            if batch.fetched == 0 {
                // A fetch from a consumer deleted with its stream (a lost stream,
                // a republish) comes back empty rather than failing, and would
                // keep doing so: look it up, and subscribe again if it is gone.
                if let Err(error) = pull.get_info().await {
                    tracing::warn!(%error, "the consumer is gone, subscribing again");
                    return true;
                }
                fetched = fetcher.next().await;
                continue;
            }
            if batch.deliveries.is_empty() {
                self.acknowledge(&batch).await;
                fetched = fetcher.next().await;
                continue;
            }
            // Behind, the next batch is fetched meanwhile; what is prefetched when
            // a commit fails stays unacked, and the new subscription rewinds to
            // before it. Caught up (the batch is not full), the next fetch waits
            // for what comes after this batch and takes all of it, rather than
            // return with the first event that arrives while this one commits.
            let prefetch = (batch.fetched >= self.config.batch_size).then(|| fetcher.spawn());
            match self.commit_with_retry(&batch.deliveries, shutdown).await {
                Commit::Cancelled => return false,
                Commit::Gap => return true,
                Commit::Done => self.acknowledge(&batch).await,
            }
            fetched = match prefetch {
                Some(prefetch) => {
                    // Thousands of parsed events take milliseconds to free.
                    tokio::task::spawn_blocking(move || drop(batch));
                    prefetch.landed().await
                }
                None => fetcher.next().await,
            };
        }
    }

    /// Creates the stream and the durable consumer when missing. Messages left
    /// unacked by an earlier run would come back only after `ack_wait`, behind
    /// newer ones of the same aggregates, whose offsets would then make the older
    /// ones look applied. So the consumer is recreated to restart just after its
    /// last contiguous ack; what it replays that was already applied is skipped.
    /// A durable created by an earlier version, with a subject filter on the
    /// server or explicit acks (decision 0020), is recreated the same way.
    /// This assumes one worker per durable name.
    async fn subscribe(&self) -> anyhow::Result<PullConsumer> {
        let name = &self.config.durable_name;
        let stream = nats::ensure_stream(&self.jetstream, &self.config.stream).await?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(name, self.pull_config(DeliverPolicy::All))
            .await
            .with_context(|| format!("create consumer {name}"))?;
        let info = consumer.cached_info();
        let outdated =
            info.config.ack_policy != AckPolicy::All || !info.config.filter_subject.is_empty();
        if info.num_ack_pending == 0 && !outdated {
            return Ok(consumer);
        }
        let start_sequence = info.ack_floor.stream_sequence + 1;
        tracing::info!(
            start_sequence,
            unacked = info.num_ack_pending,
            outdated,
            "rewinding"
        );
        stream
            .delete_consumer(name)
            .await
            .with_context(|| format!("delete consumer {name}"))?;
        stream
            .create_consumer(self.pull_config(DeliverPolicy::ByStartSequence { start_sequence }))
            .await
            .with_context(|| format!("recreate consumer {name}"))
    }

    /// Recreates the durable consumer (and the stream, when missing) so that it
    /// delivers from `start_sequence` on. For a consumer that is not running, such
    /// as a read model's after a rebuild took its place.
    pub async fn reposition(&self, start_sequence: u64) -> anyhow::Result<()> {
        let name = &self.config.durable_name;
        let stream = nats::ensure_stream(&self.jetstream, &self.config.stream).await?;
        if let Err(error) = stream.delete_consumer(name).await {
            use async_nats::jetstream::stream::ConsumerErrorKind;
            let missing = matches!(error.kind(), ConsumerErrorKind::JetStream(e)
                if e.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND);
            if !missing {
                return Err(error).with_context(|| format!("delete consumer {name}"));
            }
        }
        let policy = DeliverPolicy::ByStartSequence { start_sequence };
        stream
            .create_consumer(self.pull_config(policy))
            .await
            .with_context(|| format!("create consumer {name} at {start_sequence}"))?;
        Ok(())
    }

    fn pull_config(&self, deliver_policy: DeliverPolicy) -> pull::Config {
        pull::Config {
            durable_name: Some(self.config.durable_name.clone()),
            // The whole stream: the consumer filters (see `filter_subject`).
            filter_subject: String::new(),
            deliver_policy,
            // One ack covers the batch: batches commit whole and in stream order.
            ack_policy: AckPolicy::All,
            ack_wait: self.config.ack_wait,
            // The batch in hand and the one fetched meanwhile. Also bounds what a
            // crash leaves unacked, and so what a restart replays.
            max_ack_pending: i64::try_from(2 * self.config.batch_size).unwrap_or(i64::MAX),
            ..Default::default()
        }
    }

    /// Applies the batch until it commits. A gap ends the attempts at once: the
    /// missing event has to be fetched first. An event the handler keeps failing
    /// on is retried apart from the rest and finally parked (see [`retry`]).
    async fn commit_with_retry(&self, batch: &[Delivery], shutdown: &CancellationToken) -> Commit {
        retry::commit(self, batch, shutdown).await
    }

    /// Applies every new event of the batch and the checkpoint in one transaction.
    /// Returns how many events were new.
    ///
    /// A batch that fails forgets the recent offsets: what is applied next, one
    /// by one or after a rewind, reads them afresh.
    async fn apply_batch(&self, batch: &[Delivery]) -> anyhow::Result<u64> {
        // Collected rather than mapped lazily: a closure over borrowed deliveries
        // held across the await makes `run`'s future not `Send`.
        let events: Vec<(&Envelope, u64)> = batch
            .iter()
            .map(|delivery| (&delivery.envelope, delivery.stream_sequence))
            .collect();
        let lock = || self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let mut recent = std::mem::take(&mut *lock());
        let applied = apply_batch_after(
            &self.pool,
            &*self.handler,
            &self.config,
            events,
            &mut recent,
        )
        .await?;
        *lock() = recent;
        Ok(applied)
    }

    /// Acks a committed batch with one cumulative ack of its last message,
    /// applied or passed over. A lost ack only means a redelivery, which the
    /// offsets skip, so failures are logged and not retried.
    async fn acknowledge(&self, batch: &Batch) {
        // Both lists are in stream order.
        let last_delivered = batch.deliveries.last().map(|delivery| &delivery.message);
        let last = [last_delivered, batch.passed_over.last()]
            .into_iter()
            .flatten()
            .max_by_key(|message| stream_sequence(message));
        if let Some(message) = last {
            if let Err(error) = message.ack().await {
                tracing::warn!(subject = %message.subject, %error, "ack failed");
            }
        }
        // Acks are buffered by the client; pushing them out now keeps a shutdown
        // right after this batch from losing them.
        if let Err(error) = self.jetstream.client().flush().await {
            tracing::warn!(%error, "flushing acks failed");
        }
    }
}

/// Applies a batch of events and the checkpoint of `config`'s consumer in one
/// transaction, as a [`Consumer`] applies what it fetched: an event whose sequence
/// its aggregate's offset already covers is skipped, so a redelivery changes
/// nothing. Each event comes with its stream sequence. Replaying recorded
/// streams without NATS goes through here too. Returns how many events were new.
pub async fn apply_batch<'a>(
    pool: &PgPool,
    handler: &dyn Handler,
    config: &ConsumerConfig,
    batch: impl IntoIterator<Item = (&'a Envelope, u64)>,
) -> anyhow::Result<u64> {
    apply_batch_after(pool, handler, config, batch, &mut RecentOffsets::default()).await
}

/// [`apply_batch`], taking the offsets of the aggregates that `recent` knows
/// from it rather than from the database, and adding the batch's once it
/// commits.
async fn apply_batch_after<'a>(
    pool: &PgPool,
    handler: &dyn Handler,
    config: &ConsumerConfig,
    batch: impl IntoIterator<Item = (&'a Envelope, u64)>,
    recent: &mut RecentOffsets,
) -> anyhow::Result<u64> {
    let mut tx = crate::db::begin(pool)
        .await
        .context("begin batch transaction")?;
    if let Some(search_path) = &config.search_path {
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(search_path)
            .execute(&mut *tx)
            .await
            .context("set the batch's search_path")?;
    }
    let batch: Vec<(&Envelope, u64)> = batch.into_iter().collect();
    let mut offsets = Offsets::load(config, &mut tx, batch.iter().map(|(e, _)| *e), recent).await?;
    let mut new = Vec::with_capacity(batch.len());
    let mut last = 0;
    for (envelope, stream_sequence) in batch {
        last = last.max(stream_sequence);
        if offsets.is_next(config, envelope)? {
            offsets.advance(envelope);
            new.push(envelope);
        }
    }
    if !new.is_empty() {
        handler
            .apply_all(&mut tx, &new)
            .await
            .map_err(retry::HandlerFailed::of_batch)?;
    }
    let announcement = (config.announce_changes && !new.is_empty()).then(|| {
        let moved = new.iter().map(|envelope| envelope.aggregate_id.as_str());
        crate::changes::payload(handler.name(), moved)
    });
    let applied = new.len() as u64;
    offsets
        .save_with_checkpoint(config, &mut tx, last, applied, announcement)
        .await?;
    tx.commit().await.context("commit batch")?;
    recent.remember(&offsets.moved);
    Ok(applied)
}

/// The offsets a consumer's own batches committed last, so that a batch whose
/// aggregates each go on from one of them reads none: at a few events per
/// batch, that read is one of a handful of round trips. The write-back still
/// checks every offset against its row, so one that another writer moved fails
/// the batch, which then forgets them all.
#[derive(Debug, Default)]
struct RecentOffsets {
    /// The last committed sequence by aggregate type, then id.
    by_type: HashMap<String, HashMap<String, i64>>,
    len: usize,
}

impl RecentOffsets {
    /// Beyond this many aggregates the offsets are forgotten and gathered again:
    /// a live consumer's working set fits, a replay's passes through.
    const CAPACITY: usize = 4096;

    fn get(&self, (aggregate_type, aggregate_id): &AggregateKey<'_>) -> Option<i64> {
        self.by_type
            .get(*aggregate_type)?
            .get(*aggregate_id)
            .copied()
    }

    fn remember(&mut self, moved: &HashMap<AggregateKey<'_>, i64>) {
        if self.len + moved.len() > Self::CAPACITY {
            *self = Self::default();
        }
        for (&(aggregate_type, aggregate_id), &sequence) in moved {
            let ids = match self.by_type.get_mut(aggregate_type) {
                Some(ids) => ids,
                None => self.by_type.entry(aggregate_type.to_owned()).or_default(),
            };
            if ids.insert(aggregate_id.to_owned(), sequence).is_none() {
                self.len += 1;
            }
        }
    }
}

/// The key of an event's aggregate in `consumer_offsets`: its type and id.
type AggregateKey<'a> = (&'a str, &'a str);

fn aggregate_key(envelope: &Envelope) -> AggregateKey<'_> {
    (&envelope.aggregate_type, &envelope.aggregate_id)
}

/// The aggregate offsets of one batch, read with one query (none when the
/// consumer remembers them all, see [`RecentOffsets`]) and written back with
/// one, beside the checkpoint: per event, only the handler's own statements
/// reach the database.
///
/// They are read without a row lock and written back only where they still hold
/// what was read, so a batch takes no transaction id before its first write. A
/// row lock (`SELECT … FOR UPDATE`) gave every batch one from its start, and the
/// relays of every database in the cluster wait for the oldest running one
/// (decision 0011): a reaction's batch, which runs its commands in between, held
/// back its own events, and every other relay's, for as long as it ran.
struct Offsets<'a> {
    /// Each aggregate's last applied sequence as read or remembered; none when
    /// it had no row.
    read: HashMap<AggregateKey<'a>, i64>,
    /// The last sequence of each aggregate the batch moved.
    moved: HashMap<AggregateKey<'a>, i64>,
}

/// Another batch of the same consumer recorded offsets of this batch's aggregates
/// after this one read them: two workers on one durable, or a redelivery racing
/// its original. The batch rolls back and is applied again from fresh offsets,
/// which then skip what the other batch applied.
#[derive(Debug, thiserror::Error)]
#[error("consumer {consumer}: another batch moved {moved} of this batch's aggregate offsets")]
struct OffsetsMoved {
    consumer: String,
    moved: usize,
}

impl<'a> Offsets<'a> {
    /// The offsets of every aggregate in the batch: from `recent` where the
    /// batch's first event of the aggregate follows on from it, read otherwise.
    async fn load(
        config: &ConsumerConfig,
        tx: &mut PgConnection,
        envelopes: impl Iterator<Item = &'a Envelope>,
        recent: &RecentOffsets,
    ) -> anyhow::Result<Self> {
        let mut first: HashMap<AggregateKey<'a>, i64> = HashMap::new();
        for envelope in envelopes {
            first
                .entry(aggregate_key(envelope))
                .or_insert(envelope.sequence);
        }
        let mut read = HashMap::new();
        let mut keys = Vec::new();
        for (key, sequence) in first {
            match recent.get(&key) {
                Some(last) if sequence == last + 1 => {
                    read.insert(key, last);
                }
                _ => keys.push(key),
            }
        }
        if keys.is_empty() {
            return Ok(Self {
                read,
                moved: HashMap::new(),
            });
        }
        let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        // Each row comes back as its key's place in `keys`, from 1. Each key is
        // looked up by itself (see `crate::db::connect`).
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT key.place, o.last_sequence
               FROM unnest($2::text[], $3::text[]) WITH ORDINALITY
                    AS key (aggregate_type, aggregate_id, place)
              CROSS JOIN LATERAL (
                    SELECT last_sequence FROM consumer_offsets
                     WHERE consumer = $1 AND aggregate_type = key.aggregate_type
                       AND aggregate_id = key.aggregate_id
                    OFFSET 0) AS o",
        )
        .bind(&config.durable_name)
        .bind(&types)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .context("read the aggregate offsets")?;
        read.extend(rows.into_iter().filter_map(|(place, sequence)| {
            let key = keys.get(usize::try_from(place).ok()?.checked_sub(1)?)?;
            Some((*key, sequence))
        }));
        Ok(Self {
            read,
            moved: HashMap::new(),
        })
    }

    /// The aggregate's last applied sequence, 0 when it has none.
    fn last(&self, key: &AggregateKey<'a>) -> i64 {
        let last = self.moved.get(key).or_else(|| self.read.get(key));
        last.copied().unwrap_or(0)
    }

    /// Whether `envelope` is its aggregate's next event: `false` for one already
    /// applied, a [`SequenceGap`] for one that came early.
    fn is_next(&self, config: &ConsumerConfig, envelope: &Envelope) -> anyhow::Result<bool> {
        let key = aggregate_key(envelope);
        let last = self.last(&key);
        if envelope.sequence <= last {
            return Ok(false);
        }
        if config.expect_every_event && envelope.sequence > last + 1 {
            return Err(SequenceGap {
                aggregate: format!("{}:{}", key.0, key.1),
                last,
                sequence: envelope.sequence,
            }
            .into());
        }
        Ok(true)
    }

    fn advance(&mut self, envelope: &'a Envelope) {
        self.moved
            .insert(aggregate_key(envelope), envelope.sequence);
    }

    /// Writes the offsets that moved and the consumer's checkpoint, in one
    /// statement: the offsets that had a row are updated where it still holds
    /// what was read, the others inserted where no row has appeared meanwhile.
    /// Fails with [`OffsetsMoved`] when any of them was written by another batch
    /// in between. An `announcement` is sent on [`crate::changes::CHANNEL`] as
    /// the transaction commits.
    ///
    /// One statement rather than four: at a few events per batch, a batch's
    /// round trips to the database cost more than what they write. The rows to
    /// update are looked up key by key (see [`crate::db::connect`]).
    async fn save_with_checkpoint(
        &self,
        config: &ConsumerConfig,
        tx: &mut PgConnection,
        stream_seq: u64,
        applied: u64,
        announcement: Option<String>,
    ) -> anyhow::Result<()> {
        let (mut known, mut new) = (OffsetRows::default(), OffsetRows::default());
        for (key, &last) in &self.moved {
            match self.read.get(key) {
                Some(&read) => known.push(key, last, read),
                None => new.push(key, last, 0),
            }
        }
        static SAVE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH updated AS (
                 UPDATE consumer_offsets AS o SET last_sequence = moved.last_sequence
                   FROM unnest($5::text[], $6::text[], $7::bigint[], $8::bigint[])
                        AS moved (aggregate_type, aggregate_id, last_sequence, was)
                  CROSS JOIN LATERAL (
                        SELECT ctid FROM consumer_offsets
                         WHERE consumer = $1 AND aggregate_type = moved.aggregate_type
                           AND aggregate_id = moved.aggregate_id
                        OFFSET 0) AS row
                  WHERE o.ctid = row.ctid AND o.last_sequence = moved.was
              RETURNING 1),
             inserted AS (
                 INSERT INTO consumer_offsets (consumer, aggregate_type, aggregate_id, last_sequence)
                 SELECT $1, * FROM unnest($9::text[], $10::text[], $11::bigint[])
                 ON CONFLICT (consumer, aggregate_type, aggregate_id) DO NOTHING
              RETURNING 1),
             checkpoint AS ({SAVE_CHECKPOINT}),
             announced AS (SELECT pg_notify($12, $13) WHERE $13 IS NOT NULL)
             SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted),
                    (SELECT count(*) FROM announced)"
            )
        });
        let (written, _announced): (i64, i64) = sqlx::query_as(&SAVE)
            .bind(&config.durable_name)
            .bind(&config.stream.name)
            .bind(i64::try_from(stream_seq).context("stream sequence out of range")?)
            .bind(i64::try_from(applied).context("applied count out of range")?)
            .bind(&known.types)
            .bind(&known.ids)
            .bind(&known.sequences)
            .bind(&known.read)
            .bind(&new.types)
            .bind(&new.ids)
            .bind(&new.sequences)
            .bind(crate::changes::CHANNEL)
            .bind(announcement)
            .fetch_one(&mut *tx)
            .await
            .context("record the aggregate offsets and the checkpoint")?;
        let expected = self.moved.len();
        let written = usize::try_from(written).unwrap_or_default();
        if written < expected {
            return Err(OffsetsMoved {
                consumer: config.durable_name.clone(),
                moved: expected - written,
            }
            .into());
        }
        Ok(())
    }
}

/// Offsets to write, column by column.
#[derive(Default)]
struct OffsetRows<'a> {
    types: Vec<&'a str>,
    ids: Vec<&'a str>,
    sequences: Vec<i64>,
    read: Vec<i64>,
}

impl<'a> OffsetRows<'a> {
    fn push(&mut self, key: &AggregateKey<'a>, sequence: i64, read: i64) {
        self.types.push(key.0);
        self.ids.push(key.1);
        self.sequences.push(sequence);
        self.read.push(read);
    }
}

/// Applies the event and records its sequence for its aggregate, unless that
/// sequence or a later one is already recorded. Returns whether it was applied.
async fn apply_once(
    handler: &dyn Handler,
    config: &ConsumerConfig,
    tx: &mut PgConnection,
    envelope: &Envelope,
) -> anyhow::Result<bool> {
    let key = (
        &config.durable_name,
        &envelope.aggregate_type,
        &envelope.aggregate_id,
    );
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last_sequence FROM consumer_offsets
          WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3 FOR UPDATE",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .fetch_optional(&mut *tx)
    .await
    .context("read the aggregate offset")?;
    let last = last.unwrap_or(0);
    if envelope.sequence <= last {
        return Ok(false);
    }
    if config.expect_every_event && envelope.sequence > last + 1 {
        let aggregate = format!("{}:{}", key.1, key.2);
        let sequence = envelope.sequence;
        return Err(SequenceGap {
            aggregate,
            last,
            sequence,
        }
        .into());
    }
    handler
        .apply(tx, envelope)
        .await
        .map_err(|error| retry::HandlerFailed::new(error, envelope))?;
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, aggregate_type, aggregate_id, last_sequence)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (consumer, aggregate_type, aggregate_id)
         DO UPDATE SET last_sequence = EXCLUDED.last_sequence",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .bind(envelope.sequence)
    .execute(tx)
    .await
    .context("record the aggregate offset")?;
    Ok(true)
}

/// Records how far a consumer got in its stream and how many events it applied:
/// $1 consumer, $2 stream, $3 stream sequence, $4 applied.
const SAVE_CHECKPOINT: &str =
    "INSERT INTO consumer_checkpoints (consumer, stream, stream_seq, applied, updated_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (consumer, stream) DO UPDATE
        SET stream_seq = GREATEST(consumer_checkpoints.stream_seq, EXCLUDED.stream_seq),
            applied = consumer_checkpoints.applied + EXCLUDED.applied,
            updated_at = now()";

async fn save_checkpoint(
    config: &ConsumerConfig,
    tx: &mut PgConnection,
    stream_seq: u64,
    applied: u64,
) -> anyhow::Result<()> {
    sqlx::query(SAVE_CHECKPOINT)
        .bind(&config.durable_name)
        .bind(&config.stream.name)
        .bind(i64::try_from(stream_seq).context("stream sequence out of range")?)
        .bind(i64::try_from(applied).context("applied count out of range")?)
        .execute(tx)
        .await
        .context("save the checkpoint")?;
    Ok(())
}

/// Terminates messages that carry no Envelope, which no retry could ever apply.
async fn terminate(malformed: Vec<(jetstream::Message, anyhow::Error)>) {
    for (message, error) in malformed {
        let error = format!("{error:#}");
        tracing::error!(subject = %message.subject, error, "terminating a malformed message");
        if let Err(error) = message.ack_with(AckKind::Term).await {
            tracing::warn!(%error, "terminating a malformed message failed");
        }
    }
}

/// Whether `subject` matches `filter`, where `*` stands for one token and a
/// final `>` for one or more; an empty filter matches everything.
fn subject_matches(filter: &str, subject: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    let mut tokens = subject.split('.');
    for wanted in filter.split('.') {
        match (wanted, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (wanted, Some(token)) if wanted == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// Whether the event type of `subject`, its last token, is one of `event_types`;
/// `None` allows every type.
fn is_one_of(event_types: Option<&[String]>, subject: &str) -> bool {
    let event_type = subject.rsplit('.').next().unwrap_or_default();
    event_types.is_none_or(|types| types.iter().any(|wanted| wanted == event_type))
}

/// A message's place in its stream; 0 when its metadata does not parse.
fn stream_sequence(message: &jetstream::Message) -> u64 {
    message.info().map_or(0, |info| info.stream_sequence)
}

/// The message's Envelope, and its place in the stream as its metadata, read
/// once by the caller, gave it.
fn parse<E: std::fmt::Display>(
    message: &jetstream::Message,
    stream_sequence: Result<u64, E>,
) -> anyhow::Result<(Envelope, u64)> {
    let envelope = serde_json::from_slice(&message.payload).context("parse the Envelope")?;
    let stream_sequence =
        stream_sequence.map_err(|error| anyhow::anyhow!("read the JetStream metadata: {error}"))?;
    Ok((envelope, stream_sequence))
}

/// Exponential backoff from 100 ms to 30 s between retries.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self::starting_at(Duration::from_millis(100))
    }

    /// Backoff whose first pause is `first`.
    fn starting_at(first: Duration) -> Self {
        Self(first)
    }

    /// Sleeps for the current delay and doubles it; `false` when cancelled first.
    async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.0;
        self.0 = (delay * 2).min(Duration::from_secs(30));
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{orders_event, rows_read, test_stream, Recording};

    /// The configuration of a consumer of every orders event into [`Recording`].
    fn recording_config() -> ConsumerConfig {
        let stream = test_stream("orders");
        let filter = format!("{}.>", stream.subject_prefix);
        ConsumerConfig::new("recording", stream, filter)
    }

    #[tokio::test]
    async fn a_remembered_offset_saves_the_read_and_one_moved_meanwhile_fails_the_batch() {
        let db = Recording::database().await;
        let config = recording_config();
        let events: Vec<Envelope> = (1..=3)
            .map(|sequence| orders_event("Order", "a", sequence, "OrderNoted"))
            .collect();
        let mut recent = RecentOffsets::default();
        let applied = apply_batch_after(
            &db.pool,
            &Recording,
            &config,
            [(&events[0], 1)],
            &mut recent,
        );
        assert_eq!(applied.await.unwrap(), 1);
        assert_eq!(recent.get(&("Order", "a")), Some(1));

        // Another worker on the durable applies the next event; this one still
        // remembers 1 and, redelivered that event, applies it again until the
        // write-back finds the offset moved and rolls the batch back.
        apply_batch(&db.pool, &Recording, &config, [(&events[1], 2)])
            .await
            .unwrap();
        let error = apply_batch_after(
            &db.pool,
            &Recording,
            &config,
            [(&events[1], 2)],
            &mut recent,
        )
        .await
        .unwrap_err();
        assert!(error.downcast_ref::<OffsetsMoved>().is_some(), "{error:#}");

        // The next batch after what it remembers reads nothing, and commits.
        let mut recent = RecentOffsets::default();
        recent.remember(&[(("Order", "a"), 2)].into());
        let applied = apply_batch_after(
            &db.pool,
            &Recording,
            &config,
            [(&events[2], 3)],
            &mut recent,
        );
        assert_eq!(applied.await.unwrap(), 1);
        assert_eq!(recent.get(&("Order", "a")), Some(3));
        let recorded = Recording::applied(&db.pool).await;
        let mut once_each: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
        once_each.sort();
        assert_eq!(recorded, once_each);
    }

    #[tokio::test]
    async fn a_batch_reads_and_writes_only_its_own_offsets_however_many_there_are() {
        let db = Recording::database().await;
        let config = recording_config();
        sqlx::query(
            "INSERT INTO consumer_offsets (consumer, aggregate_type, aggregate_id, last_sequence)
             SELECT 'recording', 'Order', 'other-' || i, 1 FROM generate_series(1, 5000) i",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let events: Vec<Envelope> = (1..=2)
            .map(|sequence| orders_event("Order", "a", sequence, "OrderNoted"))
            .collect();
        // One connection, whose reads `rows_read` counts.
        let pool = crate::db::connect(db.options(), 1).await.unwrap();
        apply_batch(&pool, &Recording, &config, [(&events[0], 1)])
            .await
            .unwrap();

        // Without the offset in memory, the batch reads it, then updates it.
        let before = rows_read(&pool, "consumer_offsets").await;
        apply_batch(&pool, &Recording, &config, [(&events[1], 2)])
            .await
            .unwrap();
        let read = rows_read(&pool, "consumer_offsets").await - before;
        assert!(
            read <= 10,
            "the batch read {read} offset rows for one aggregate"
        );
        assert_eq!(Recording::applied(&pool).await.len(), 2);
    }

    #[test]
    fn recent_offsets_start_over_when_full() {
        let mut recent = RecentOffsets::default();
        let ids: Vec<String> = (0..RecentOffsets::CAPACITY)
            .map(|i| i.to_string())
            .collect();
        let all: HashMap<AggregateKey<'_>, i64> =
            ids.iter().map(|id| (("Order", id.as_str()), 1)).collect();
        recent.remember(&all);
        assert_eq!(recent.get(&("Order", "0")), Some(1));
        recent.remember(&[(("Order", "new"), 1)].into());
        assert_eq!(recent.get(&("Order", "0")), None);
        assert_eq!(recent.get(&("Order", "new")), Some(1));
        assert_eq!(recent.len, 1);
    }

    #[test]
    fn deliveries_must_go_on_from_the_last_fetch_without_a_skip() {
        let fetch = |numbers: &[u64]| {
            let mut delivered = Delivered::default();
            for &number in numbers {
                delivered.note(number);
            }
            delivered
        };
        // The first fetch of a subscription sets where it starts.
        let mut next = None;
        fetch(&[4, 5, 6]).follow(&mut next).unwrap();
        assert_eq!(next, Some(7));
        fetch(&[]).follow(&mut next).unwrap();
        fetch(&[7]).follow(&mut next).unwrap();
        assert_eq!(next, Some(8));

        let between = fetch(&[9, 10]).follow(&mut next).unwrap_err();
        assert_eq!((between.expected, between.came), (8, 9));
        assert_eq!(next, Some(8), "a fetch that skipped moved the next number");
        let inside = fetch(&[8, 10, 11]).follow(&mut next).unwrap_err();
        assert_eq!((inside.expected, inside.came), (9, 10));
    }

    #[test]
    fn an_event_type_is_the_last_token_of_the_subject() {
        let reserved = ["StockReserved".to_owned()];
        let types = Some(&reserved[..]);
        assert!(is_one_of(types, "inventory.Product.MUG.StockReserved"));
        assert!(!is_one_of(types, "inventory.Product.MUG.Restocked"));
        assert!(!is_one_of(
            types,
            "inventory.Product.StockReserved.Restocked"
        ));
        assert!(is_one_of(None, "inventory.Product.MUG.Restocked"));
    }

    #[test]
    fn subjects_match_filters_token_by_token() {
        assert!(subject_matches(
            "orders.Order.>",
            "orders.Order.0190.OrderPlaced"
        ));
        assert!(subject_matches(
            "orders.*.*.OrderPlaced",
            "orders.Order.0190.OrderPlaced"
        ));
        assert!(subject_matches("", "orders.Order.0190.OrderPlaced"));
        assert!(!subject_matches(
            "orders.Order.>",
            "orders.Refund.0190.Noted"
        ));
        assert!(!subject_matches("orders.Order.>", "orders.Order"));
        assert!(!subject_matches("orders.Order", "orders.Order.0190"));
        assert!(!subject_matches("orders.*", "orders.Order.0190"));
        assert!(!subject_matches(
            "orders.Order.>",
            "ordersX.Order.0190.OrderPlaced"
        ));
    }
}

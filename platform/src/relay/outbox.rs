//! Reading the outbox: the relay's checkpoint, the next batch of committed rows,
//! and the `NOTIFY` that says new rows may be there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::event_store::{EventRow, EVENT_COLUMNS};

/// The channel that the events table's insert trigger notifies.
pub(super) const CHANNEL: &str = "events_appended";
/// The payload on [`CHANNEL`] of a republish request; appends send none.
pub(super) const REPUBLISH_REQUESTED: &str = "republish";
/// Pause after the `LISTEN` connection failed to reconnect; polling covers the gap.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The last event the relay published, as its place in relay order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct Checkpoint {
    /// The writing transaction's id, as a number.
    pub(super) transaction_id: i64,
    /// The event's position in the log.
    pub(super) global_position: i64,
}

impl Checkpoint {
    /// The checkpoint just after `row`.
    pub(super) fn of(row: &EventRow) -> Self {
        Self {
            transaction_id: row.transaction_id,
            global_position: row.global_position,
        }
    }
}

/// The stored checkpoint of `stream_name`; the start of the log when there is none.
pub(super) async fn load_checkpoint(
    pool: &PgPool,
    stream_name: &str,
) -> anyhow::Result<Checkpoint> {
    let stored: Option<Checkpoint> = sqlx::query_as(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position
           FROM relay_checkpoints WHERE stream = $1",
    )
    .bind(stream_name)
    .fetch_optional(pool)
    .await
    .context("load the relay checkpoint")?;
    Ok(stored.unwrap_or_default())
}

/// The relay's horizon, as an `xid8` expression: the oldest transaction of the
/// statement's snapshot that may still commit rows into this database's events
/// table, or the snapshot's `xmax` when none runs. Rows of later transactions
/// wait, because that one may still commit rows that belong before them.
///
/// `pg_snapshot_xmin` would do, but it covers the whole cluster: a short
/// transaction in any other service's database held every relay back (decision
/// 0011). So a running transaction is left out when `pg_stat_activity` shows it
/// running in another database, which it can never write into. Only that
/// positive sighting leaves one out: a transaction that ended meanwhile, or a
/// prepared one, is not listed and still counts. A sighting cannot go stale, as
/// a session never changes database, and every role may read the `datid` and
/// `backend_xid` of other roles' sessions. The lookup runs only when some
/// transaction is running at all.
pub(super) const HORIZON: &str = "coalesce(
    (SELECT min(running) FROM pg_snapshot_xip(pg_current_snapshot()) AS running
      WHERE running::xid NOT IN (
            SELECT backend_xid FROM pg_stat_get_activity(NULL)
             WHERE backend_xid IS NOT NULL
               AND datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
    pg_snapshot_xmax(pg_current_snapshot()))";

/// The next committed rows after `checkpoint`, in relay order, below the
/// [`HORIZON`].
pub(super) async fn read_batch(
    pool: &PgPool,
    checkpoint: Checkpoint,
    batch_size: usize,
) -> anyhow::Result<Vec<EventRow>> {
    // `events.transaction_id`, not the select list's `transaction_id`, which is
    // the bigint cast: ordered by that, the index is no use, and every read was
    // a parallel scan and a sort (9-15 ms on 250,000 events) instead of a probe.
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND transaction_id < {HORIZON}
          ORDER BY events.transaction_id, events.global_position
          LIMIT $3"
    );
    sqlx::query_as(&sql)
        .bind(checkpoint.transaction_id)
        .bind(checkpoint.global_position)
        .bind(i64::try_from(batch_size).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .context("read the next relay batch")
}

/// Whether rows after `checkpoint` exist that [`read_batch`] cannot return yet:
/// committed, but at or above the [`HORIZON`]. Their `NOTIFY` has come and gone,
/// so the relay must look again.
pub(super) async fn held_back(pool: &PgPool, checkpoint: Checkpoint) -> anyhow::Result<bool> {
    // Not `EXISTS (…)`: the planner then expects a third of the table to match
    // and scans it from the start, which took 40 ms on 250,000 events, every
    // time the relay caught up. Ordered by the index, the look is one probe.
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT global_position FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
          ORDER BY transaction_id, global_position
          LIMIT 1",
    )
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .fetch_optional(pool)
    .await
    .context("look for events behind the xmin horizon")?;
    Ok(next.is_some())
}

/// Wake-ups from `LISTEN events_appended` and from the relay's own process. A task
/// of its own receives the notifications, so waiting is cancel-safe and a wake-up
/// that arrives mid-batch is kept.
pub(super) struct Wakeups {
    notified: Arc<Notify>,
    /// Whether a republish may have been requested since the relay last looked:
    /// set by a request's notification, by a poll, and by a lost connection.
    republish: Arc<AtomicBool>,
    listener: JoinHandle<()>,
}

impl Wakeups {
    /// Starts listening on a connection of its own; a notification wakes whoever
    /// waits on `notified`, as the relay's own process does (see [`super::RelayWake`]).
    pub(super) async fn listen(
        options: &PgConnectOptions,
        notified: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        // PgListener reconnects through a pool; one connection that never expires is
        // all it needs.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .context("open the relay LISTEN connection")?;
        let mut listener = PgListener::connect_with(&pool)
            .await
            .context("start LISTEN")?;
        listener
            .listen(CHANNEL)
            .await
            .context("LISTEN events_appended")?;
        // A new leader looks once whatever it heard.
        let republish = Arc::new(AtomicBool::new(true));
        let listener = tokio::spawn(forward(
            listener,
            Arc::clone(&notified),
            Arc::clone(&republish),
        ));
        Ok(Self {
            notified,
            republish,
            listener,
        })
    }

    /// Waits for the next notification, or `poll_interval`, whichever comes first.
    pub(super) async fn next(&self, poll_interval: Duration) {
        let heard = tokio::time::timeout(poll_interval, self.notified.notified()).await;
        if heard.is_err() {
            self.republish.store(true, Ordering::Relaxed);
        }
    }

    /// Whether to look for a republish request: the table is read only when one
    /// may have come, not at every append.
    pub(super) fn take_republish(&self) -> bool {
        self.republish.swap(false, Ordering::Relaxed)
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn forward(mut listener: PgListener, notified: Arc<Notify>, republish: Arc<AtomicBool>) {
    loop {
        match listener.try_recv().await {
            // One stored permit is enough: a single drain catches up on them all.
            Ok(Some(notification)) => {
                if notification.payload() == REPUBLISH_REQUESTED {
                    republish.store(true, Ordering::Relaxed);
                }
                notified.notify_one();
            }
            // The connection was lost and re-established; notifications sent in
            // between are gone, so look anyway.
            Ok(None) => {
                republish.store(true, Ordering::Relaxed);
                notified.notify_one();
            }
            Err(error) => {
                tracing::warn!(error = %error, "relay LISTEN failed, polling until it reconnects");
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        }
    }
}

//! Read-your-writes without polling. A projection's batch announces what it
//! changed with `NOTIFY read_model_changed` in its own transaction, so the
//! announcement arrives once the change is visible. A query service answering
//! `?min_version=` listens, and looks at the row again only when its read model
//! names the row's aggregate (decision 0023).
//!
//! The payload is the read model's name, then the ids of the aggregates the batch
//! moved, one per line. Ids that do not fit in one notification leave the name
//! alone, which wakes every waiter of that read model.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

/// The channel that projections notify and query services listen on.
pub const CHANNEL: &str = "read_model_changed";

/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// Pause before listening again after the listener failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The announcement that a batch changed these aggregates of `read_model`; the
/// consumer sends it in the batch's transaction, which delivers it on commit.
pub(crate) fn payload<'a>(
    read_model: &str,
    aggregate_ids: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut payload = read_model.to_owned();
    let mut named = HashSet::new();
    for id in aggregate_ids {
        if !named.insert(id) {
            continue;
        }
        if payload.len() + 1 + id.len() > MAX_PAYLOAD {
            return read_model.to_owned();
        }
        payload.push('\n');
        payload.push_str(id);
    }
    payload
}

/// What one notification says changed.
struct Change<'a> {
    read_model: &'a str,
    /// Empty when any aggregate of the read model may have changed.
    aggregate_ids: HashSet<&'a str>,
}

impl<'a> Change<'a> {
    fn parse(payload: &'a str) -> Self {
        let mut lines = payload.split('\n');
        Self {
            read_model: lines.next().unwrap_or_default(),
            aggregate_ids: lines.collect(),
        }
    }

    fn covers(&self, waiter: &Waiter) -> bool {
        self.read_model == waiter.read_model
            && (self.aggregate_ids.is_empty() || self.aggregate_ids.contains(&*waiter.aggregate_id))
    }
}

/// What a query service's handlers share: a pool on the read-model database,
/// and the changes announced there.
#[derive(Clone)]
pub struct ReadModelState {
    /// Connections to the `read_models` database.
    pub pool: PgPool,
    /// Changes of the read models, as announced by their projections.
    pub changes: ReadModelChanges,
}

impl ReadModelState {
    /// The state over `pool`, listening for changes from a connection of its own.
    pub fn new(pool: PgPool) -> Self {
        let changes = ReadModelChanges::listen(pool.clone());
        Self { pool, changes }
    }
}

/// The changes a query service listens for, shared by its handlers. Cloning it
/// is cheap; the listener stops when the last clone is dropped.
#[derive(Clone)]
pub struct ReadModelChanges {
    waiters: Arc<Mutex<Vec<Waiter>>>,
    _listener: Arc<AbortOnDropHandle<()>>,
}

struct Waiter {
    read_model: &'static str,
    aggregate_id: String,
    wake: oneshot::Sender<()>,
}

impl ReadModelChanges {
    /// Listens on `pool`'s database, from a connection of its own. Until that
    /// connection is up, and while it is lost, nobody is woken: waiters fall back
    /// on looking again now and then.
    pub fn listen(pool: PgPool) -> Self {
        let waiters: Arc<Mutex<Vec<Waiter>>> = Arc::default();
        let listener = tokio::spawn(listen(pool, waiters.clone()));
        Self {
            waiters,
            _listener: Arc::new(AbortOnDropHandle::new(listener)),
        }
    }

    /// Resolves at the next change announced for this aggregate of `read_model`.
    /// Register before looking at the row, so that a change committed meanwhile
    /// is not missed.
    pub fn next_change(
        &self,
        read_model: &'static str,
        aggregate_id: &str,
    ) -> oneshot::Receiver<()> {
        let (wake, woken) = oneshot::channel();
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Requests that gave up leave their waiter behind until a change covers
        // it; forget them before the list grows, so that a quiet read model
        // does not collect them.
        if waiters.len() == waiters.capacity() {
            waiters.retain(|waiter| !waiter.wake.is_closed());
        }
        waiters.push(Waiter {
            read_model,
            aggregate_id: aggregate_id.to_owned(),
            wake,
        });
        woken
    }
}

/// Wakes the waiters a notification covers, and forgets those that gave up.
fn wake(waiters: &Mutex<Vec<Waiter>>, payload: &str) {
    let change = Change::parse(payload);
    let mut waiters = waiters.lock().unwrap_or_else(PoisonError::into_inner);
    let (woken, waiting) = std::mem::take(&mut *waiters)
        .into_iter()
        .filter(|waiter| !waiter.wake.is_closed())
        .partition::<Vec<_>, _>(|waiter| change.covers(waiter));
    *waiters = waiting;
    for waiter in woken {
        let _ = waiter.wake.send(());
    }
}

async fn listen(pool: PgPool, waiters: Arc<Mutex<Vec<Waiter>>>) {
    loop {
        let mut listened = false;
        let Err(error) = listen_until_lost(&pool, &waiters, &mut listened).await;
        if listened {
            tracing::warn!(%error, "lost the read-model changes; `min_version` polls until they are back");
        } else {
            // The database may not exist yet: the service starts before the worker.
            tracing::debug!(%error, "cannot listen for read-model changes yet");
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

async fn listen_until_lost(
    pool: &PgPool,
    waiters: &Mutex<Vec<Waiter>>,
    listened: &mut bool,
) -> Result<Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    *listened = true;
    tracing::debug!(channel = CHANNEL, "listening for read-model changes");
    loop {
        // Reconnects by itself when the connection drops; what was announced
        // meanwhile is lost, and waiters look again anyway.
        let notification = listener.recv().await?;
        wake(waiters, notification.payload());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_the_read_model_then_each_aggregate_once() {
        let payload = payload("orders", ["a", "b", "a"]);

        assert_eq!(payload, "orders\na\nb");
        let change = Change::parse(&payload);
        assert_eq!(change.read_model, "orders");
        assert_eq!(change.aggregate_ids, HashSet::from(["a", "b"]));
    }

    #[test]
    fn ids_that_do_not_fit_leave_the_read_model_alone_which_covers_every_aggregate() {
        let ids: Vec<String> = (0..1_000).map(|n| format!("{n:036}")).collect();

        let payload = payload("orders", ids.iter().map(String::as_str));

        assert_eq!(payload, "orders");
        assert!(Change::parse(&payload).aggregate_ids.is_empty());
    }

    #[tokio::test]
    async fn waiters_whose_requests_gave_up_are_forgotten_before_the_list_grows() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nowhere")
            .unwrap();
        let changes = ReadModelChanges::listen(pool);

        for _ in 0..1_000 {
            drop(changes.next_change("orders", "a"));
        }
        let _waiting = changes.next_change("orders", "b");

        let waiters = changes.waiters.lock().unwrap();
        assert!(waiters.len() <= 8, "{} waiters kept", waiters.len());
        assert_eq!(waiters.last().unwrap().aggregate_id, "b");
    }

    #[tokio::test]
    async fn a_change_wakes_the_waiters_of_its_aggregates_only() {
        let waiters = Mutex::new(Vec::new());
        let register = |read_model, aggregate_id: &str| {
            let (wake, woken) = oneshot::channel();
            waiters.lock().unwrap().push(Waiter {
                read_model,
                aggregate_id: aggregate_id.to_owned(),
                wake,
            });
            woken
        };
        let mut same = register("orders", "a");
        let mut other_id = register("orders", "b");
        let mut other_model = register("payments", "a");
        let mut anything = register("products", "MUG");

        wake(&waiters, "orders\na");
        wake(&waiters, "products");

        assert!(same.try_recv().is_ok());
        assert!(anything.try_recv().is_ok());
        assert!(other_id.try_recv().is_err());
        assert!(other_model.try_recv().is_err());
        assert_eq!(waiters.lock().unwrap().len(), 2);
    }
}

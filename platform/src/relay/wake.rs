//! Waking the relay from its own process, without a `NOTIFY`.
//!
//! The events table's trigger notifies the relay of every commit that appends.
//! PostgreSQL orders notifications by holding one lock for the whole cluster from
//! a notifying transaction's pre-commit until its commit is flushed
//! (`PreCommit_Notify`), so notifying commits cannot share a WAL flush: under a
//! load of one-event commands that lock, more than the writes, set the pace.
//! An [`AggregateStore`](crate::event_store::AggregateStore) in the process of the
//! leading relay therefore appends with the notification turned off for its
//! statement and wakes the relay in memory. While another replica's relay leads,
//! the store's appends notify as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Shared by a process's relay and its stores: whether the relay leads, and the
/// wake-up the stores send it after each append.
#[derive(Debug, Clone, Default)]
pub struct RelayWake {
    notify: Arc<Notify>,
    leading: Arc<AtomicBool>,
}

impl RelayWake {
    /// Whether this process's relay is leading, so that it needs no `NOTIFY` to
    /// hear of an append from this process.
    pub fn relay_leads_here(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Wakes the relay after an append committed. A wake-up sent while the relay
    /// is busy is kept, and one is enough for any number of appends.
    pub fn appended(&self) {
        self.notify.notify_one();
    }

    /// The wake-up the relay waits on, shared with its `LISTEN` connection.
    pub(super) fn notify(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    /// Marks the relay as leading until the guard drops. Set before the relay's
    /// first read of a term, so an append that left out its `NOTIFY` is found by
    /// that read or wakes a later one.
    pub(super) fn lead(&self) -> Leading<'_> {
        self.leading.store(true, Ordering::Release);
        Leading(self)
    }
}

/// A leadership term of this process's relay; stores notify again once it ends.
pub(super) struct Leading<'a>(&'a RelayWake);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.leading.store(false, Ordering::Release);
    }
}

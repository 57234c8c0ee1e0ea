//! Aggregates kept in memory between commands, so that a command on an aggregate
//! this process wrote to recently need not read and fold its whole history again.
//!
//! Commands on one aggregate take turns in a process: each holds the aggregate's
//! [`Slot`] from its decision to its append, and the next finds the aggregate as
//! that one left it. Without turns, a command that came while another held the
//! aggregate loaded a copy of its own and then lost the race to append.
//!
//! The cache is never trusted for correctness: an append is checked by the events
//! table's primary key `(aggregate_type, aggregate_id, sequence)` whatever the
//! cache held. A stale entry, left behind when another process appended to the
//! aggregate, therefore costs one conflict, after which the command loads the
//! aggregate from the store (see [`super::AggregateStore::execute`]).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// How many aggregates a store keeps by default, per aggregate type and process.
pub(super) const DEFAULT_CAPACITY: usize = 10_000;

/// An aggregate as it was after its last event this process knows of.
pub(super) struct Cached<A> {
    pub(super) aggregate: A,
    /// The sequence of that last event.
    pub(super) version: usize,
}

/// One aggregate's place in memory, empty until a command leaves it there.
type Place<A> = Arc<TurnLock<Option<Cached<A>>>>;

/// The most recently used aggregates of one type, by id.
pub(super) struct AggregateCache<A> {
    places: Option<Mutex<LruCache<String, Place<A>>>>,
}

/// A command's turn at one aggregate: until it is dropped, other commands of this
/// process on the same aggregate wait. A cache of capacity 0 gives turns that
/// neither wait nor keep anything.
pub(super) struct Slot<A>(Option<OwnedMutexGuard<Option<Cached<A>>>>);

impl<A> AggregateCache<A> {
    /// A cache of at most `capacity` aggregates; 0 turns it off.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            places: NonZeroUsize::new(capacity).map(|capacity| Mutex::new(LruCache::new(capacity))),
        }
    }

    /// Waits for this process's turn at the aggregate.
    pub(super) async fn turn(&self, aggregate_id: &str) -> Slot<A> {
        let Some(places) = &self.places else {
            return Slot(None);
        };
        let place = {
            // A panic while the lock was held can only have left a whole entry or
            // none, so the map is still sound.
            let mut places = places
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match places.get(aggregate_id) {
                Some(place) => Arc::clone(place),
                None => {
                    let place = Place::default();
                    places.put(aggregate_id.to_owned(), Arc::clone(&place));
                    place
                }
            }
        };
        Slot(Some(place.lock_owned().await))
    }
}

impl<A> Slot<A> {
    /// Removes and returns the aggregate: the command owns it until it puts it
    /// back, and a command that ends without putting it back (its append was
    /// refused or failed) leaves the next one to load it from the store.
    pub(super) fn take(&mut self) -> Option<Cached<A>> {
        self.0.as_mut()?.take()
    }

    /// Keeps the aggregate at `version`, unless a newer version is kept already.
    pub(super) fn put(&mut self, aggregate: A, version: usize) {
        let Some(place) = self.0.as_mut() else {
            return;
        };
        if place.as_ref().is_none_or(|kept| kept.version < version) {
            **place = Some(Cached { aggregate, version });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_taken_aggregate_is_gone_until_it_is_put_back() {
        let cache = AggregateCache::new(4);
        cache.turn("a").await.put("state", 3);
        let mut slot = cache.turn("a").await;
        let taken = slot.take().expect("cached");
        assert_eq!((taken.aggregate, taken.version), ("state", 3));
        assert!(slot.take().is_none());
        drop(slot);
        assert!(cache.turn("a").await.take().is_none());
    }

    #[tokio::test]
    async fn the_next_command_waits_its_turn_and_finds_what_the_last_one_left() {
        let cache = Arc::new(AggregateCache::new(4));
        let mut first = cache.turn("a").await;
        let waiting = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move { cache.turn("a").await.take().map(|kept| kept.version) }
        });
        let other = tokio::time::timeout(Duration::from_secs(1), cache.turn("b")).await;
        assert!(other.is_ok(), "another aggregate waits for nobody");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second command went ahead");
        first.put("state", 2);
        drop(first);
        assert_eq!(waiting.await.expect("second command"), Some(2));
    }

    #[tokio::test]
    async fn an_older_version_never_replaces_a_newer_one() {
        let cache = AggregateCache::new(4);
        let mut slot = cache.turn("a").await;
        slot.put("newer", 5);
        slot.put("older", 4);
        assert_eq!(slot.take().map(|kept| kept.aggregate), Some("newer"));
    }

    #[tokio::test]
    async fn the_least_recently_used_aggregate_leaves_first() {
        let cache = AggregateCache::new(2);
        for (id, value) in [("a", 1), ("b", 2), ("c", 3)] {
            cache.turn(id).await.put(value, 1);
        }
        assert!(cache.turn("b").await.take().is_some());
        assert!(cache.turn("c").await.take().is_some());
        assert!(cache.turn("a").await.take().is_none());
    }

    #[tokio::test]
    async fn a_capacity_of_zero_keeps_nothing_and_never_waits() {
        let cache = AggregateCache::new(0);
        let mut held = cache.turn("a").await;
        held.put(1, 1);
        assert!(held.take().is_none());
        let other = tokio::time::timeout(Duration::from_secs(1), cache.turn("a")).await;
        assert!(other.is_ok(), "no turns without a cache");
    }
}

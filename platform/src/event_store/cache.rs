//! Aggregates kept in memory between commands, so that a command on an aggregate
//! this process wrote to recently need not read and fold its whole history again.
//!
//! The cache is never trusted for correctness: an append is checked by the events
//! table's primary key `(aggregate_type, aggregate_id, sequence)` whatever the
//! cache held. A stale entry, left behind when another process appended to the
//! aggregate, therefore costs one conflict, after which the command loads the
//! aggregate from the store (see [`super::AggregateStore::execute`]).

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// How many aggregates a store keeps by default, per aggregate type and process.
pub(super) const DEFAULT_CAPACITY: usize = 10_000;

/// An aggregate as it was after its last event this process knows of.
pub(super) struct Cached<A> {
    pub(super) aggregate: A,
    /// The sequence of that last event.
    pub(super) version: usize,
}

/// The most recently used aggregates of one type, by id.
pub(super) struct AggregateCache<A> {
    entries: Option<Mutex<LruCache<String, Cached<A>>>>,
}

impl<A> AggregateCache<A> {
    /// A cache of at most `capacity` aggregates; 0 turns it off.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity)
                .map(|capacity| Mutex::new(LruCache::new(capacity))),
        }
    }

    /// Removes and returns the aggregate: the command that takes it owns it until
    /// it puts it back, and a concurrent command on the same aggregate loads its
    /// own copy from the store.
    pub(super) fn take(&self, aggregate_id: &str) -> Option<Cached<A>> {
        self.lock()?.pop(aggregate_id)
    }

    /// Keeps the aggregate at `version`, unless a newer version is kept already.
    pub(super) fn put(&self, aggregate_id: &str, aggregate: A, version: usize) {
        let Some(mut entries) = self.lock() else {
            return;
        };
        let newer_kept = entries
            .peek(aggregate_id)
            .is_some_and(|kept| kept.version >= version);
        if !newer_kept {
            entries.put(aggregate_id.to_owned(), Cached { aggregate, version });
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, LruCache<String, Cached<A>>>> {
        let entries = self.entries.as_ref()?;
        // A panic while the lock was held can only have left a whole entry or
        // none, so the map is still sound.
        Some(
            entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_aggregate_is_gone_until_it_is_put_back() {
        let cache = AggregateCache::new(4);
        cache.put("a", "state", 3);
        let taken = cache.take("a").expect("cached");
        assert_eq!((taken.aggregate, taken.version), ("state", 3));
        assert!(cache.take("a").is_none());
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let cache = AggregateCache::new(4);
        cache.put("a", "newer", 5);
        cache.put("a", "older", 4);
        assert_eq!(cache.take("a").map(|kept| kept.aggregate), Some("newer"));
    }

    #[test]
    fn the_least_recently_used_aggregate_leaves_first() {
        let cache = AggregateCache::new(2);
        cache.put("a", 1, 1);
        cache.put("b", 2, 1);
        cache.put("c", 3, 1);
        assert!(cache.take("a").is_none());
        assert!(cache.take("b").is_some() && cache.take("c").is_some());
    }

    #[test]
    fn a_capacity_of_zero_keeps_nothing() {
        let cache = AggregateCache::new(0);
        cache.put("a", 1, 1);
        assert!(cache.take("a").is_none());
    }
}

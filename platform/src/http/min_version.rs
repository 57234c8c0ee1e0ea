//! Read-your-writes: `?min_version=N` on an aggregate's route waits until the
//! read model has applied that version of the aggregate.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use utoipa::IntoParams;

use crate::changes::ReadModelChanges;

/// Longest wait for the read model to reach a requested `min_version`.
pub const MIN_VERSION_WAIT: Duration = Duration::from_secs(2);

/// How often the read model is looked at again while waiting when no change is
/// announced: the listener may be reconnecting, or a writer may not announce.
const MIN_VERSION_POLL: Duration = Duration::from_millis(25);

/// Read-your-writes for one aggregate.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionParams {
    /// Wait up to 2 s until the read model has applied this version.
    pub min_version: Option<i64>,
}

/// The row a request waits on: an aggregate of a read model, whose announced
/// changes ([`ReadModelChanges`]) say when to look again.
pub struct Watched<'a> {
    /// Changes as the service hears them.
    pub changes: &'a ReadModelChanges,
    /// The read model, as its projection names it, such as `orders`.
    pub read_model: &'static str,
    /// The aggregate the row shows.
    pub aggregate_id: &'a str,
}

/// Looks a row up with `find` until its `version` reaches `min_version`, for at
/// most [`MIN_VERSION_WAIT`]. After that the row is returned as it is, older or
/// missing: a slow projection is not the caller's fault, and stale data that says
/// how stale it is (its version) stays useful.
///
/// It looks again when the projection announces a change of the row's aggregate,
/// and every [`MIN_VERSION_POLL`] in case an announcement is lost.
pub async fn find_at_min_version<T, F, Fut>(
    min_version: Option<i64>,
    watched: Watched<'_>,
    version: fn(&T) -> i64,
    mut find: F,
) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let Some(min_version) = min_version else {
        return find().await;
    };
    let deadline = Instant::now() + MIN_VERSION_WAIT;
    loop {
        let changed = watched
            .changes
            .next_change(watched.read_model, watched.aggregate_id);
        let row = find().await?;
        let caught_up = row.as_ref().is_some_and(|row| version(row) >= min_version);
        if caught_up || Instant::now() >= deadline {
            return Ok(row);
        }
        let wait = MIN_VERSION_POLL.min(deadline.saturating_duration_since(Instant::now()));
        let _ = tokio::time::timeout(wait, changed).await;
    }
}

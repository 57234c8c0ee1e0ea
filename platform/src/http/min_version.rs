//! Read-your-writes: `?min_version=N` on an aggregate's route waits until the
//! read model has applied that version of the aggregate.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use utoipa::IntoParams;

/// Longest wait for the read model to reach a requested `min_version`.
pub const MIN_VERSION_WAIT: Duration = Duration::from_secs(2);

/// How often the read model is looked at again while waiting: a primary-key
/// lookup, and a read model is usually a few milliseconds behind its command.
const MIN_VERSION_POLL: Duration = Duration::from_millis(2);

/// Read-your-writes for one aggregate.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionParams {
    /// Wait up to 2 s until the read model has applied this version.
    pub min_version: Option<i64>,
}

/// Looks a row up with `find` until its `version` reaches `min_version`, for at
/// most [`MIN_VERSION_WAIT`]. After that the row is returned as it is, older or
/// missing: a slow projection is not the caller's fault, and stale data that says
/// how stale it is (its version) stays useful.
pub async fn find_at_min_version<T, F, Fut>(
    min_version: Option<i64>,
    version: fn(&T) -> i64,
    mut find: F,
) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + MIN_VERSION_WAIT;
    loop {
        let row = find().await?;
        let caught_up = match (&row, min_version) {
            (_, None) => true,
            (Some(row), Some(min_version)) => version(row) >= min_version,
            (None, Some(_)) => false,
        };
        if caught_up || Instant::now() >= deadline {
            return Ok(row);
        }
        tokio::time::sleep(MIN_VERSION_POLL).await;
    }
}

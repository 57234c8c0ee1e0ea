//! Leader election: the relay publishes only while it holds a session-level
//! advisory lock on a connection of its own. The lock lives exactly as long as that
//! connection, so a relay that crashes or is cut off frees it for the next one.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use super::outbox::Checkpoint;

/// How often a relay that is not the leader tries to take the lock again.
pub(super) const ACQUIRE_RETRY: Duration = Duration::from_secs(1);
/// Longest wait for the lock connection to answer; a connection that hangs longer is
/// treated as lost, since the lock may be gone with it.
const LOCK_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock key for a stream's relay. FNV-1a of the stream name: unlike
/// `std`'s hasher it is stable across builds, so every replica computes the same key.
pub fn advisory_lock_key(stream_name: &str) -> i64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    // The prefix keeps the key apart from other advisory-lock users of the database.
    let hash = "shop-relay:"
        .bytes()
        .chain(stream_name.bytes())
        .fold(OFFSET_BASIS, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The connection that holds the relay's advisory lock.
pub(super) struct Leadership {
    connection: PgConnection,
}

impl Leadership {
    /// Waits until this relay holds the lock for `key`, trying every
    /// [`ACQUIRE_RETRY`]. Returns `None` when shutdown comes first.
    pub(super) async fn acquire(
        options: &PgConnectOptions,
        key: i64,
        shutdown: &CancellationToken,
    ) -> Option<Self> {
        loop {
            match Self::try_acquire(options, key).await {
                Ok(Some(leadership)) => return Some(leadership),
                Ok(None) => tracing::debug!("another relay holds the lock"),
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "cannot try the relay lock")
                }
            }
            if super::cancelled_during(ACQUIRE_RETRY, shutdown).await {
                return None;
            }
        }
    }

    async fn try_acquire(options: &PgConnectOptions, key: i64) -> anyhow::Result<Option<Self>> {
        let mut connection = within_timeout(PgConnection::connect_with(options))
            .await
            .context("open the relay lock connection")?;
        let acquired: bool = within_timeout(
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut connection),
        )
        .await
        .context("try the relay lock")?;
        Ok(acquired.then_some(Self { connection }))
    }

    /// Fails when the lock connection is gone: a live session still holds its lock.
    pub(super) async fn check(&mut self) -> anyhow::Result<()> {
        within_timeout(self.connection.ping())
            .await
            .context("ping the relay lock connection")
    }

    /// The lock connection, for writes that only the leader may make.
    pub(super) fn connection(&mut self) -> &mut PgConnection {
        &mut self.connection
    }

    /// Moves the checkpoint forward to `checkpoint` and counts `published` events.
    /// It never moves backwards: a refused update means another relay went further,
    /// so this one is no longer the leader.
    pub(super) async fn store_checkpoint(
        &mut self,
        stream_name: &str,
        checkpoint: Checkpoint,
        published: usize,
    ) -> anyhow::Result<()> {
        let stored = within_timeout(
            sqlx::query(
                "INSERT INTO relay_checkpoints (stream, transaction_id, global_position, published)
                 VALUES ($1, $2::text::xid8, $3, $4)
                 ON CONFLICT (stream) DO UPDATE
                    SET transaction_id = EXCLUDED.transaction_id,
                        global_position = EXCLUDED.global_position,
                        published = relay_checkpoints.published + EXCLUDED.published,
                        updated_at = now()
                  WHERE (relay_checkpoints.transaction_id, relay_checkpoints.global_position)
                      < (EXCLUDED.transaction_id, EXCLUDED.global_position)",
            )
            .bind(stream_name)
            .bind(checkpoint.transaction_id)
            .bind(checkpoint.global_position)
            .bind(i64::try_from(published).unwrap_or(i64::MAX))
            .execute(&mut self.connection),
        )
        .await
        .context("store the relay checkpoint")?;
        anyhow::ensure!(
            stored.rows_affected() == 1,
            "the stored checkpoint is already past {checkpoint:?}"
        );
        Ok(())
    }

    /// Releases the lock and closes its connection. Unlocking first means the lock
    /// is free when this returns, not only once the server has ended the session.
    pub(super) async fn release(mut self) {
        let unlocked = within_timeout(
            sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut self.connection),
        )
        .await;
        if let Err(error) = unlocked {
            tracing::debug!(error = format!("{error:#}"), "unlocking the relay lock");
        }
        if let Err(error) = within_timeout(self.connection.close()).await {
            tracing::debug!(
                error = format!("{error:#}"),
                "closing the relay lock connection"
            );
        }
    }
}

/// Runs a step on the lock connection, failing when it takes too long.
async fn within_timeout<T>(
    step: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(LOCK_CONNECTION_TIMEOUT, step).await {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!("no answer within {LOCK_CONNECTION_TIMEOUT:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_differ_per_stream() {
        // A key that changed between releases would let an old and a new relay lead
        // side by side during a rolling deploy.
        assert_eq!(advisory_lock_key("INVENTORY"), 3_006_167_829_187_246_239);
        assert_ne!(advisory_lock_key("INVENTORY"), advisory_lock_key("ORDERS"));
    }
}

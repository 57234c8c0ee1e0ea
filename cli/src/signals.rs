//! Ctrl-C and SIGTERM as a stream of requests to stop: the first one stops the
//! stack gracefully, a second one stops it at once.

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Receives stop requests from the moment it is created, so none is lost while
/// `shop` is busy with something else.
pub struct Signals {
    received: watch::Receiver<u64>,
}

impl Signals {
    /// Starts listening for Ctrl-C (SIGINT) and SIGTERM.
    pub fn listen() -> anyhow::Result<Self> {
        let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("listen for Ctrl-C")?;
        let (sender, received) = watch::channel(0);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = terminate.recv() => {}
                    Some(()) = interrupt.recv() => {}
                    else => break,
                }
                sender.send_modify(|count| *count += 1);
            }
        });
        Ok(Self { received })
    }

    /// Waits for the next stop request that has not been waited for yet.
    pub async fn next(&mut self) {
        if self.received.changed().await.is_err() {
            // The listener is gone, so no request can come any more.
            std::future::pending::<()>().await;
        }
    }

    /// Whether a stop request arrived that has not been waited for yet; it counts
    /// as waited for from now on.
    pub fn take_pending(&mut self) -> bool {
        let pending = self.received.has_changed().unwrap_or(false);
        if pending {
            self.received.borrow_and_update();
        }
        pending
    }
}

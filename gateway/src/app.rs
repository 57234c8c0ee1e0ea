//! Wiring: bind the port and serve until shut down.

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{router, Config, Upstreams};

/// A built gateway, bound to its port and ready to run.
pub struct App {
    listener: TcpListener,
    router: Router,
}

impl App {
    /// Binds the port. The gateway holds no connections of its own to PostgreSQL
    /// or NATS; it is ready when it listens.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let upstreams = Upstreams {
            inventory: config.inventory_url.trim_end_matches('/').to_owned(),
            catalog: config.catalog_url.trim_end_matches('/').to_owned(),
        };
        let router = router(upstreams).merge(platform::http::health_router(Default::default()));
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("bind {}", config.addr))?;
        Ok(Self { listener, router })
    }

    /// The port the gateway listens on (useful when it was bound to port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = ?self.listener.local_addr().ok(), "gateway listening");
        platform::http::serve(self.listener, self.router, shutdown).await
    }
}

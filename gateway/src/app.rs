//! Wiring: bind the port and serve until shut down.

use platform::service::Service;

use crate::{router, Config};

/// Binds the port: a gateway ready to run. It holds no connections of its own to
/// PostgreSQL or NATS; it is ready when it listens.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let router =
        router(config.upstreams()).merge(platform::http::health_router(Default::default()));
    Service::bind("gateway", config.addr, router).await
}

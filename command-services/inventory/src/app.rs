//! Wiring: the event store, the relay and the HTTP server, started and stopped together.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use domain::inventory::Product;
use platform::db::{self, EVENT_STORE_MIGRATIONS, INVENTORY_DB};
use platform::event_store::AggregateStore;
use platform::http::{self, Readiness};
use platform::nats::StreamSpec;
use platform::relay::{Relay, RelayConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{products, Config, SERVICE};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The product aggregates' event store.
    pub products: Arc<AggregateStore<Product>>,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Shop inventory service",
    description = "Commands on products, and their event streams."
))]
struct ApiDoc;

/// The service's routes with their OpenAPI document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(products::router())
        .with_state(state)
        .split_for_parts();
    let openapi = axum::Json(openapi);
    http::with_common_layers(api.route(
        "/openapi.json",
        axum::routing::get(move || async move { openapi }),
    ))
}

/// A built service, bound to its port and ready to run.
pub struct App {
    listener: TcpListener,
    router: Router,
    relay: Relay,
}

impl App {
    /// Connects to PostgreSQL and NATS, migrates the event store and binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let server = config.common.server()?;
        let options = config
            .common
            .database(config.inventory_database_url.as_deref(), INVENTORY_DB.name)?;
        let pool = db::connect_or_create(&server, options.clone(), config.db_pool).await?;
        db::migrate(&pool, &EVENT_STORE_MIGRATIONS).await?;
        let nats = platform::nats::connect(&config.common.nats_url).await?;

        let stream = StreamSpec {
            name: config.stream.clone(),
            subject_prefix: config.subject_prefix.clone(),
        };
        let relay = Relay::new(
            SERVICE,
            pool.clone(),
            options,
            async_nats::jetstream::new(nats.clone()),
            stream,
            RelayConfig::default(),
        );
        let state = AppState {
            products: Arc::new(AggregateStore::new(SERVICE, pool.clone(), ())),
        };
        let readiness = Readiness {
            databases: vec![pool],
            nats: Some(nats),
        };
        let router = router(state).merge(http::health_router(readiness));
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("bind {}", config.addr))?;
        Ok(Self {
            listener,
            router,
            relay,
        })
    }

    /// The port the service listens on (useful when it was bound to port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves requests and relays events until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = ?self.listener.local_addr().ok(), "inventory service listening");
        let relay = self.relay.spawn(shutdown.clone());
        let served = http::serve(self.listener, self.router, shutdown.clone()).await;
        shutdown.cancel();
        relay.await.context("relay task")??;
        served
    }
}

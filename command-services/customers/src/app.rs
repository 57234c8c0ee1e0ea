//! Wiring: the event store, the relay and the HTTP server, started and stopped together.

use std::sync::Arc;

use axum::Router;
use domain::customers::Customer;
use platform::db::CUSTOMERS_DB;
use platform::event_store::AggregateStore;
use platform::http;
use platform::service::{CommandInfra, Service};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{customers, Config, SERVICE};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The customer aggregates' event store.
    pub customers: Arc<AggregateStore<Customer>>,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Shop customers service",
    description = "Commands on customers, and their event streams."
))]
struct ApiDoc;

/// The service's routes, honouring `Idempotency-Key`, with their OpenAPI document
/// at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let pool = state.customers.pool().clone();
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(customers::router())
        .with_state(state)
        .split_for_parts();
    let openapi = axum::Json(openapi);
    let api = http::with_idempotency(api, pool);
    http::with_common_layers(api.route(
        "/openapi.json",
        axum::routing::get(move || async move { openapi }),
    ))
}

/// Connects to PostgreSQL and NATS, migrates the event store and binds the port:
/// a service ready to run its HTTP server and its relay.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let stream = config.common.stream(SERVICE);
    let infra = CommandInfra::connect(
        &config.common,
        &CUSTOMERS_DB,
        config.customers_database_url.as_deref(),
        config.db_pool,
        stream,
    )
    .await?;
    let state = AppState {
        customers: Arc::new(infra.store(SERVICE, ())),
    };
    let router = router(state)
        .merge(http::health_router(infra.readiness()))
        .merge(infra.relay_admin())
        .merge(platform::trace::router(infra.pool.clone(), SERVICE));
    let relay = infra.relay(SERVICE);
    Ok(Service::bind(SERVICE, config.addr, router)
        .await?
        .with_task("relay", move |shutdown| relay.run(shutdown)))
}

//! Wiring: the event store, the relay, the saga's consumers and the HTTP server,
//! started and stopped together.

use std::sync::Arc;

use axum::Router;
use domain::payments::Payment;
use platform::db::PAYMENTS_DB;
use platform::dead_letters::DeadLetters;
use platform::event_store::AggregateStore;
use platform::http;
use platform::service::{CommandInfra, Service};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::reactions::{self, Stores};
use crate::{payments, Config, SERVICE};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The payment aggregates' event store; a payment's id is its order's id.
    pub payments: Arc<AggregateStore<Payment>>,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Shop payments service",
    description = "The event streams of order payments. Payments are decided by the order saga, not by commands."
))]
struct ApiDoc;

/// The service's routes, with their OpenAPI document at `/openapi.json`. No route
/// writes, so none needs `Idempotency-Key`.
pub fn router(state: AppState) -> Router {
    router_with_dead_letters(state, None)
}

/// [`router`], plus `/api/admin/dead-letters` for the saga consumers' dead letters
/// when they are given.
pub fn router_with_dead_letters(state: AppState, dead_letters: Option<DeadLetters>) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(payments::router());
    if let Some(dead_letters) = dead_letters {
        api = api.merge(http::dead_letters_router(dead_letters));
    }
    let (api, openapi) = api.with_state(state).split_for_parts();
    let openapi = axum::Json(openapi);
    http::with_common_layers(api.route(
        "/openapi.json",
        axum::routing::get(move || async move { openapi }),
    ))
}

/// Connects to PostgreSQL and NATS, migrates the event store and binds the port:
/// a service ready to run its HTTP server, its relay and its saga consumers.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let stream = config.common.stream(SERVICE);
    let infra = CommandInfra::connect(
        &config.common,
        &PAYMENTS_DB,
        config.payments_database_url.as_deref(),
        config.db_pool,
        stream,
    )
    .await?;
    let stores = Stores::of(&infra);
    let ([from_customers, from_orders], dead_letters) = reactions::consumers(
        &infra,
        &config.common,
        &stores,
        config.unknown_customer_wait(),
    );
    let state = AppState {
        payments: stores.payments.clone(),
    };
    let router = router_with_dead_letters(state, Some(dead_letters))
        .merge(http::health_router(infra.readiness()))
        .merge(infra.relay_admin())
        .merge(platform::trace::router(infra.pool.clone(), SERVICE));
    let relay = infra.relay(SERVICE);
    Ok(Service::bind(SERVICE, config.addr, router)
        .await?
        .with_task("relay", move |shutdown| relay.run(shutdown))
        .with_task("customers consumer", move |shutdown| async move {
            from_customers.run(shutdown).await;
            Ok(())
        })
        .with_task("orders consumer", move |shutdown| async move {
            from_orders.run(shutdown).await;
            Ok(())
        }))
}

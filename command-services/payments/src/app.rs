//! Wiring: the event store, the relay, the saga's consumers and the HTTP server,
//! started and stopped together.

use std::sync::Arc;

use axum::Router;
use domain::payments::Payment;
use platform::db::PAYMENTS_DB;
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
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(payments::router())
        .with_state(state)
        .split_for_parts();
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
    let stores = Stores::new(infra.pool.clone());
    let [from_customers, from_orders] = reactions::consumers(
        &infra,
        &config.common,
        &stores,
        config.unknown_customer_wait(),
    );
    let state = AppState {
        payments: stores.payments.clone(),
    };
    let router = router(state).merge(http::health_router(infra.readiness()));
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

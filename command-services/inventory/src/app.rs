//! Wiring: the event store, the relay, the saga consumer and the HTTP server,
//! started and stopped together.

use std::sync::Arc;

use axum::Router;
use domain::inventory::Product;
use platform::consumer::{Consumer, ConsumerConfig, Handler};
use platform::db::{self, INVENTORY_DB};
use platform::dead_letters::DeadLetters;
use platform::event_store::AggregateStore;
use platform::http;
use platform::service::{CommandInfra, Service};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::reactions::{OrderReactions, SAGA_DURABLE_NAME, SAGA_REACTS_TO};
use crate::{products, Config, MIGRATIONS, SERVICE};

/// Orders whose events the saga consumer handles per transaction. The batch's
/// transaction holds back this service's relay (its own `StockReserved` events
/// included) until it commits; small batches keep that pause short.
const SAGA_BATCH_SIZE: usize = 16;

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

/// The service's routes, honouring `Idempotency-Key`, with their OpenAPI document
/// at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    router_with_dead_letters(state, None)
}

/// [`router`], plus `/api/admin/dead-letters` for the saga consumer's dead
/// letters when they are given.
pub fn router_with_dead_letters(state: AppState, dead_letters: Option<DeadLetters>) -> Router {
    let pool = state.products.pool().clone();
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(products::router());
    if let Some(dead_letters) = dead_letters {
        api = api.merge(http::dead_letters_router(dead_letters));
    }
    let (api, openapi) = api.with_state(state).split_for_parts();
    let openapi = axum::Json(openapi);
    let api = http::with_idempotency(api, pool);
    http::with_common_layers(api.route(
        "/openapi.json",
        axum::routing::get(move || async move { openapi }),
    ))
}

/// Connects to PostgreSQL and NATS, migrates the event store and binds the port:
/// a service ready to run its HTTP server, its relay and its saga consumer.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let stream = config.common.stream(SERVICE);
    let infra = CommandInfra::connect(
        &config.common,
        &INVENTORY_DB,
        config.inventory_database_url.as_deref(),
        config.db_pool,
        stream,
    )
    .await?;
    db::migrate(&infra.pool, &MIGRATIONS).await?;
    let products = Arc::new(infra.store(SERVICE, ()));
    let reactions: Arc<dyn Handler> = Arc::new(OrderReactions::new(products.clone()));
    let saga = saga_consumer(&config, &infra, reactions.clone());
    let dead_letters =
        DeadLetters::new(infra.pool.clone()).with_handler(SAGA_DURABLE_NAME, reactions);
    let router = router_with_dead_letters(AppState { products }, Some(dead_letters))
        .merge(http::health_router(infra.readiness()))
        .merge(infra.relay_admin())
        .merge(platform::trace::router(infra.pool.clone(), SERVICE));
    let relay = infra.relay(SERVICE);
    Ok(Service::bind(SERVICE, config.addr, router)
        .await?
        .with_task("relay", move |shutdown| relay.run(shutdown))
        .with_task("saga consumer", move |shutdown| async move {
            saga.run(shutdown).await;
            Ok(())
        }))
}

/// The durable consumer of the orders' `Order` events that reserves, releases and
/// commits stock; its tables live in the event store's database.
fn saga_consumer(config: &Config, infra: &CommandInfra, reactions: Arc<dyn Handler>) -> Consumer {
    let orders = config.common.stream("orders");
    let filter_subject = format!("{}.Order.>", orders.subject_prefix);
    let mut consumer_config = ConsumerConfig::new(SAGA_DURABLE_NAME, orders, filter_subject)
        .only_event_types(&SAGA_REACTS_TO);
    consumer_config.batch_size = SAGA_BATCH_SIZE;
    Consumer::new(
        infra.jetstream.clone(),
        infra.pool.clone(),
        reactions,
        consumer_config,
    )
}

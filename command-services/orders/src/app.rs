//! Wiring: the event store, the relay, the saga's consumers and the HTTP server,
//! started and stopped together.

use std::sync::Arc;

use axum::Router;
use domain::orders::Order;
use platform::consumer::{Consumer, ConsumerConfig, Handler};
use platform::db::ORDERS_DB;
use platform::dead_letters::DeadLetters;
use platform::event_store::AggregateStore;
use platform::http;
use platform::nats::StreamSpec;
use platform::service::{CommandInfra, Service};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::reactions::{InventoryReactions, PaymentReactions};
use crate::{orders, Config, SERVICE};

/// Events per reaction batch. A batch's transaction stays open while its commands
/// run, and an open transaction holds back this service's relay (it publishes
/// only below the oldest transaction running in its database), so batches are
/// kept small.
const REACTION_BATCH: usize = 32;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The order aggregates' event store.
    pub orders: Arc<AggregateStore<Order>>,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Shop orders service",
    description = "Commands on orders, and their event streams."
))]
struct ApiDoc;

/// The service's routes, honouring `Idempotency-Key`, with their OpenAPI document
/// at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    router_with_dead_letters(state, None)
}

/// [`router`], plus `/api/admin/dead-letters` for the reaction consumers' dead
/// letters when they are given.
pub fn router_with_dead_letters(state: AppState, dead_letters: Option<DeadLetters>) -> Router {
    let pool = state.orders.pool().clone();
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(orders::router());
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
/// a service ready to run its HTTP server, its relay and the saga's reactions to
/// inventory and payments.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let stream = config.common.stream(SERVICE);
    let infra = CommandInfra::connect(
        &config.common,
        &ORDERS_DB,
        config.orders_database_url.as_deref(),
        config.db_pool,
        stream,
    )
    .await?;
    let orders = Arc::new(infra.store(SERVICE, ()));
    let inventory_reactions: Arc<dyn Handler> = Arc::new(InventoryReactions::new(orders.clone()));
    let payment_reactions: Arc<dyn Handler> = Arc::new(PaymentReactions::new(orders.clone()));
    let dead_letters = DeadLetters::new(infra.pool.clone())
        .with_handler(
            InventoryReactions::DURABLE_NAME,
            inventory_reactions.clone(),
        )
        .with_handler(PaymentReactions::DURABLE_NAME, payment_reactions.clone());
    let from_inventory = reaction_consumer(
        &infra,
        inventory_reactions,
        config.common.stream("inventory"),
        "Product",
        &InventoryReactions::REACTS_TO,
    );
    let from_payments = reaction_consumer(
        &infra,
        payment_reactions,
        config.common.stream("payments"),
        "Payment",
        &PaymentReactions::REACTS_TO,
    );
    let router = router_with_dead_letters(AppState { orders }, Some(dead_letters))
        .merge(http::health_router(infra.readiness()))
        .merge(infra.relay_admin())
        .merge(platform::trace::router(infra.pool.clone(), SERVICE));
    let relay = infra.relay(SERVICE);
    Ok(Service::bind(SERVICE, config.addr, router)
        .await?
        .with_task("relay", move |shutdown| relay.run(shutdown))
        .with_task(
            InventoryReactions::DURABLE_NAME,
            move |shutdown| async move {
                from_inventory.run(shutdown).await;
                Ok(())
            },
        )
        .with_task(PaymentReactions::DURABLE_NAME, move |shutdown| async move {
            from_payments.run(shutdown).await;
            Ok(())
        }))
}

/// A durable consumer of the events of one aggregate type, in another service's
/// stream, that the reactions answer; it passes over the rest.
fn reaction_consumer(
    infra: &CommandInfra,
    handler: Arc<dyn Handler>,
    stream: StreamSpec,
    aggregate_type: &str,
    reacts_to: &[&str],
) -> Consumer {
    let filter_subject = format!("{}.{aggregate_type}.>", stream.subject_prefix);
    let mut config =
        ConsumerConfig::new(handler.name(), stream, filter_subject).only_event_types(reacts_to);
    config.batch_size = REACTION_BATCH;
    Consumer::new(infra.jetstream.clone(), infra.pool.clone(), handler, config)
}

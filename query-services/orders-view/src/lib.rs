//! The orders view query service: it serves the `orders` and `payments` read
//! models that the projection worker builds, and never writes to them.

pub mod app;
pub mod orders;
pub mod payments;

use axum::routing::get;
use axum::Router;
use platform::http::{health_router, with_common_layers, ApiError, Readiness};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub use app::{build, Config};

/// What the handlers share: a pool on the read-model database, and the changes
/// its projections announce.
pub use platform::changes::ReadModelState as AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orders view",
        description = "Orders and their payments as the read models show them."
    ),
    tags(
        (name = "orders", description = "Orders, their lines and where they stand"),
        (name = "payments", description = "The payment of each order")
    )
)]
struct ApiDoc;

/// Every route of the service: the resources, their OpenAPI document at
/// `/openapi.json` (which the gateway merges), and `/healthz` and `/readyz`.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(orders::router())
        .merge(payments::router())
        .split_for_parts();
    let readiness = Readiness {
        databases: vec![state.pool.clone()],
        nats: None,
    };
    let openapi = axum::Json(openapi);
    let router = routes
        .with_state(state)
        .route(
            "/openapi.json",
            get(move || std::future::ready(openapi.clone())),
        )
        .merge(health_router(readiness));
    with_common_layers(router)
}

/// The id in a path. One that is not a UUID names nothing, so it is a 404 like any
/// unknown id.
pub(crate) fn parse_id(id: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no {what} has id {id}")))
}

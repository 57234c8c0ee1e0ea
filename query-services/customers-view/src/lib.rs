//! The customers view query service: it serves the `customers` and
//! `notifications` read models that the projection worker builds, and never
//! writes to them.

pub mod app;
pub mod customers;
pub mod notifications;

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
        title = "Customers view",
        description = "Customers, their credit and spend, and their notifications."
    ),
    tags(
        (name = "customers", description = "Each customer's profile, credit and order counters"),
        (name = "notifications", description = "Messages to each customer")
    )
)]
struct ApiDoc;

/// Every route of the service: the resources, their OpenAPI document at
/// `/openapi.json` (which the gateway merges), and `/healthz` and `/readyz`.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(customers::router())
        .merge(notifications::router())
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

/// The customer id in a path. One that is not a UUID names nobody, so it is a 404
/// like any unknown id.
pub(crate) fn parse_customer_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found(id))
}

/// The answer for a customer the read model does not serve.
pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no customer has id {id}"))
}

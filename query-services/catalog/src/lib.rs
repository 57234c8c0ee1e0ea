//! The catalog query service: it serves the `products` read model that the
//! projection worker builds, and never writes to it.

pub mod app;
pub mod products;

use axum::routing::get;
use axum::Router;
use platform::http::{health_router, with_common_layers, Readiness};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use app::{build, Config};

/// What the handlers share: a pool on the read-model database, and the changes
/// its projections announce.
pub use platform::changes::ReadModelState as AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Catalog", description = "Products as the read model shows them."),
    tags((name = "products", description = "Price and stock of every product"))
)]
struct ApiDoc;

/// Every route of the service: the resources, their OpenAPI document at
/// `/openapi.json` (which the gateway merges), and `/healthz` and `/readyz`.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(products::router())
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

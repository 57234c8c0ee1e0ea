//! Which upstream answers which route: commands and event streams go to the command
//! services, queries to the query services.

use axum::body::Body;
use axum::http::{header, Response};
use axum::routing::{get, get_service, post_service, put_service};
use axum::Router;
use axum_reverse_proxy::ReverseProxy;
use platform::http::{self, ApiError};
use utoipa_swagger_ui::SwaggerUi;

use crate::openapi;

/// Base URLs of the services behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// The inventory command service.
    pub inventory: String,
    /// The catalog query service.
    pub catalog: String,
}

/// The gateway's routes. Every proxied request carries the gateway's `X-Request-Id`.
pub fn router(upstreams: Upstreams) -> Router {
    let inventory = ReverseProxy::new("", upstreams.inventory.as_str());
    let catalog = ReverseProxy::new("", upstreams.catalog.as_str());
    let api = Router::new()
        .route(
            "/api/products",
            post_service(inventory.clone()).get_service(catalog.clone()),
        )
        .route("/api/products/{sku}", get_service(catalog.clone()))
        .route(
            "/api/products/{sku}/restock",
            post_service(inventory.clone()),
        )
        .route("/api/products/{sku}/price", put_service(inventory.clone()))
        .route("/api/products/{sku}/events", get_service(inventory))
        .layer(axum::middleware::map_response(upstream_failure_as_problem));
    let docs =
        SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::new(["/api/openapi.json"]));
    http::with_common_layers(
        api.route("/api/openapi.json", get(openapi::merged))
            .with_state(upstreams)
            .merge(docs)
            .fallback(|| async { ApiError::not_found("no such route") }),
    )
}

/// The proxy answers an unreachable upstream with a bare 502 or 504; callers get
/// problem+json for every error, so those are rewritten.
async fn upstream_failure_as_problem(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.is_server_error() && !is_problem {
        use axum::response::IntoResponse;
        let detail = format!("the service behind this route is unavailable ({status})");
        let mut problem = ApiError::unavailable(detail).into_response();
        *problem.status_mut() = status;
        return problem;
    }
    response
}

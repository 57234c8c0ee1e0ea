//! Which upstream answers which route: commands, event streams and aggregate states go
//! to the command services, queries to the query services.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Response};
use axum::routing::{get, post, put};
use axum::Router;
use axum_reverse_proxy::ReverseProxy;
use platform::http::{self, ApiError};
use utoipa_swagger_ui::SwaggerUi;

use crate::{dead_letters, openapi, relay, trace};

/// Base URLs of the services behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// The customers command service.
    pub customers: String,
    /// The inventory command service.
    pub inventory: String,
    /// The orders command service.
    pub orders: String,
    /// The payments command service.
    pub payments: String,
    /// The catalog query service.
    pub catalog: String,
    /// The orders-view query service.
    pub orders_view: String,
    /// The customers-view query service.
    pub customers_view: String,
    /// The projection worker's admin API.
    pub projections: String,
}

impl Upstreams {
    /// Every service that documents its routes, for the merged OpenAPI document.
    pub fn documented(&self) -> [&str; 8] {
        [
            &self.customers,
            &self.inventory,
            &self.orders,
            &self.payments,
            &self.catalog,
            &self.orders_view,
            &self.customers_view,
            &self.projections,
        ]
    }
}

/// The gateway's routes: writes, event streams and states go to the command service that
/// owns the aggregate, reads to the query service that serves the read model.
/// Every proxied request carries the gateway's `X-Request-Id`.
pub fn router(upstreams: Upstreams) -> Router {
    // Each route's handler shares its proxy rather than cloning it per request,
    // which copied an HTTP client and five strings.
    let to = |base: &str| {
        let proxy = Arc::new(ReverseProxy::new("", base));
        move |request: Request| {
            let proxy = Arc::clone(&proxy);
            async move { proxy.proxy_request(request).await }
        }
    };
    let customers = to(&upstreams.customers);
    let inventory = to(&upstreams.inventory);
    let orders = to(&upstreams.orders);
    let payments = to(&upstreams.payments);
    let catalog = to(&upstreams.catalog);
    let orders_view = to(&upstreams.orders_view);
    let customers_view = to(&upstreams.customers_view);
    let projections = to(&upstreams.projections);
    // Stateless: axum clones a route's state for every request it handles, and
    // only the gateway's own routes below need the upstreams.
    let proxied: Router = Router::new()
        .route("/api/customers", post(customers.clone()))
        .route("/api/customers/{id}", get(customers_view.clone()))
        .route("/api/customers/{id}/credit-limit", put(customers.clone()))
        .route("/api/customers/{id}/deactivate", post(customers.clone()))
        .route("/api/customers/{id}/events", get(customers.clone()))
        .route("/api/customers/{id}/state", get(customers))
        .route("/api/customers/{id}/notifications", get(customers_view))
        .route(
            "/api/products",
            post(inventory.clone()).get(catalog.clone()),
        )
        .route("/api/products/{sku}", get(catalog))
        .route("/api/products/{sku}/restock", post(inventory.clone()))
        .route("/api/products/{sku}/price", put(inventory.clone()))
        .route("/api/products/{sku}/events", get(inventory.clone()))
        .route("/api/products/{sku}/state", get(inventory))
        .route("/api/orders", post(orders.clone()).get(orders_view.clone()))
        .route("/api/orders/{id}", get(orders_view.clone()))
        .route("/api/orders/{id}/cancel", post(orders.clone()))
        .route("/api/orders/{id}/ship", post(orders.clone()))
        .route("/api/orders/{id}/events", get(orders.clone()))
        .route("/api/orders/{id}/state", get(orders))
        .route("/api/payments/{order_id}", get(orders_view))
        .route("/api/payments/{order_id}/events", get(payments.clone()))
        .route("/api/payments/{order_id}/state", get(payments))
        .route("/api/admin/projections", get(projections.clone()))
        .route("/api/admin/projections/{name}", get(projections.clone()))
        .route("/api/admin/projections/{name}/rebuild", post(projections))
        .layer(axum::middleware::map_response(upstream_failure_as_problem));
    let own = Router::new()
        .route("/api/openapi.json", get(openapi::merged))
        .route("/api/trace/{correlation_id}", get(trace::trace))
        .route(
            "/api/admin/relay/{service}/republish",
            post(relay::republish).get(relay::progress),
        )
        .route("/api/admin/dead-letters", get(dead_letters::list))
        .route(
            "/api/admin/dead-letters/{service}/{id}/retry",
            post(dead_letters::retry),
        )
        .with_state(upstreams);
    let docs =
        SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::new(["/api/openapi.json"]));
    http::with_request_layers(
        proxied
            .merge(own)
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

//! `POST|GET /api/admin/relay/{service}/republish`: ask a command service's relay to
//! republish its whole log into its stream, and follow the progress. The service is
//! named in the path, so the gateway picks the upstream and forwards the request to
//! that service's `/api/admin/relay/republish`.

use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, Response, StatusCode};
use platform::http::{ApiError, Path};
use platform::relay::{RepublishProgress, REPUBLISH_PATH};

use crate::Upstreams;

/// How long a command service may take to answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the service's relay to republish its whole log; 202 with the progress.
#[utoipa::path(
    post, path = "/api/admin/relay/{service}/republish", tag = "admin",
    params(("service" = String, Path, description = "customers, inventory, orders or payments")),
    responses(
        (status = 202, description = "The republish requested, or the one already under way", body = RepublishProgress),
        (status = 404, description = "No such service", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn republish(
    State(upstreams): State<Upstreams>,
    Path(service): Path<String>,
) -> Result<Response<Body>, ApiError> {
    forward(&upstreams, &service, Method::POST).await
}

/// The progress of the service's latest republish: `published` of `total` events.
#[utoipa::path(
    get, path = "/api/admin/relay/{service}/republish", tag = "admin",
    params(("service" = String, Path, description = "customers, inventory, orders or payments")),
    responses(
        (status = 200, description = "The latest republish", body = RepublishProgress),
        (status = 404, description = "No such service, or no republish was requested", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn progress(
    State(upstreams): State<Upstreams>,
    Path(service): Path<String>,
) -> Result<Response<Body>, ApiError> {
    forward(&upstreams, &service, Method::GET).await
}

/// Sends the request to the command service named `service` and relays its answer.
async fn forward(
    upstreams: &Upstreams,
    service: &str,
    method: Method,
) -> Result<Response<Body>, ApiError> {
    let base = match service {
        "customers" => &upstreams.customers,
        "inventory" => &upstreams.inventory,
        "orders" => &upstreams.orders,
        "payments" => &upstreams.payments,
        _ => {
            return Err(ApiError::not_found(format!(
            "no command service is named {service:?}; try customers, inventory, orders or payments"
        )))
        }
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(FORWARD_TIMEOUT)
        .build()
        .context("build an HTTP client")?;
    let url = format!("{base}{REPUBLISH_PATH}");
    let answer = client.request(method, &url).send().await.map_err(|error| {
        tracing::warn!(service, error = %error, "relay admin unreachable");
        ApiError::unavailable(format!("the {service} service did not answer"))
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let body = answer
        .bytes()
        .await
        .with_context(|| format!("read the answer of {url}"))?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}

/// The relay admin routes in the merged OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(republish, progress), components(schemas(RepublishProgress)))]
pub struct RelayDoc;

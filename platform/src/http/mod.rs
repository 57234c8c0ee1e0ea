//! HTTP conventions shared by every service: problem+json errors, extractors that
//! turn bad input into those errors, request ids, health checks and serving with
//! graceful shutdown.

mod dead_letters;
mod error;
mod extract;
mod health;
mod idempotency;
mod min_version;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use dead_letters::dead_letters_router;
pub use error::{ApiError, FieldError, Problem};
pub use extract::{Json, Path, Query, RequestContext};
pub use health::{health_router, Readiness};
pub use idempotency::{with_idempotency, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use min_version::{find_at_min_version, VersionParams, MIN_VERSION_WAIT};

/// The header that carries the request id, which becomes every event's correlation id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The largest request body a service accepts; larger ones get 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Generates request ids as UUIDv7, so they sort by time in logs.
#[derive(Clone, Copy, Default)]
pub struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

/// Wraps a service's router with the layers every service shares: request ids
/// (kept from the caller or generated, and echoed back), a tracing span per request
/// that names the request id, and the body limit.
pub fn with_common_layers(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuidV7))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting
/// and lets in-flight requests finish (for at most 10 seconds).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let drained = shutdown.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        drained.cancelled().await;
    });
    tokio::select! {
        result = server => result.map_err(anyhow::Error::from),
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        } => {
            tracing::warn!("in-flight requests did not finish within 10 s");
            Ok(())
        }
    }
}

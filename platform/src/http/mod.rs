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
use axum::http::{HeaderName, Method, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Instrument;

pub use dead_letters::dead_letters_router;
pub use error::{ApiError, FieldError, Problem};
pub use extract::{Json, Path, Query, RequestContext};
pub use health::{health_router, Readiness};
pub use idempotency::{with_idempotency, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use min_version::{find_at_min_version, VersionParams, Watched, MIN_VERSION_WAIT};

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

/// Wraps a service's router with the layers every service shares: those of
/// [`with_request_layers`], and writes that run to the end.
pub fn with_common_layers(router: Router) -> Router {
    with_request_layers(router.layer(middleware::from_fn(run_writes_to_the_end)))
}

/// Request ids (kept from the caller or generated, and echoed back), a tracing
/// span per request that names the request id, and the body limit. The gateway
/// takes only these: it holds no connection that a dropped request could leave
/// in a transaction, and the service it forwards a write to runs it to the end
/// whether or not the gateway waits.
pub fn with_request_layers(router: Router) -> Router {
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

/// Runs a request that may write (any method but `GET` and `HEAD`) in a task of
/// its own, so that it finishes even when its client hangs up: hyper then drops
/// the handler's future, and one dropped while postgres-es's `BEGIN` is in flight
/// leaves its pooled connection inside a transaction (see [`crate::db::begin`]).
/// A write the service has begun is carried out even if its client never hears
/// how it ended.
async fn run_writes_to_the_end(request: axum::extract::Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let span = tracing::Span::current();
    match tokio::spawn(next.run(request).instrument(span)).await {
        Ok(response) => response,
        Err(joined) if joined.is_panic() => std::panic::resume_unwind(joined.into_panic()),
        Err(_) => ApiError::unavailable("the service is shutting down").into_response(),
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::routing::post;
    use axum::Router;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Notify;

    /// Sends a request to a handler that works for 300 ms, hangs up after 50 ms,
    /// and reports whether the handler finished.
    async fn finishes_after_hang_up(method: &str) -> bool {
        let finished = Arc::new(Notify::new());
        let handler = {
            let finished = finished.clone();
            move || async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                finished.notify_one();
            }
        };
        let router = super::with_common_layers(
            Router::new().route("/work", post(handler.clone()).get(handler)),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await });

        let mut client = TcpStream::connect(address).await.expect("connect");
        let request = format!("{method} /work HTTP/1.1\r\nhost: shop\r\ncontent-length: 0\r\n\r\n");
        client.write_all(request.as_bytes()).await.expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(client);
        tokio::time::timeout(Duration::from_secs(2), finished.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_write_finishes_when_its_client_hangs_up() {
        assert!(finishes_after_hang_up("POST").await);
    }

    /// The other side of the test above: a read is dropped with its client, as
    /// hyper does with every request, so the test above can fail.
    #[tokio::test]
    async fn a_read_stops_when_its_client_hangs_up() {
        assert!(!finishes_after_hang_up("GET").await);
    }
}

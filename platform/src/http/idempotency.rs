//! `Idempotency-Key`: a repeated request with the same key and body gets the first
//! answer again and writes nothing, even when the repeats arrive concurrently.

use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use sqlx::PgPool;

use super::{ApiError, BODY_LIMIT};

/// The request header that names a retry-safe request.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Set on an answer replayed from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a repeat waits for the first request with its key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

/// Makes every route of `router` honour `Idempotency-Key`, storing answers in the
/// service's own database (table `idempotency_keys`).
pub fn with_idempotency(router: Router, pool: PgPool) -> Router {
    router.layer(axum::middleware::from_fn_with_state(pool, idempotent))
}

/// The stored first answer to a key.
#[derive(sqlx::FromRow)]
struct Stored {
    method: String,
    path: String,
    request_body: Vec<u8>,
    status: Option<i16>,
    content_type: Option<String>,
    response_body: Option<Vec<u8>>,
}

async fn idempotent(State(pool): State<PgPool>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    match handle(&pool, key, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(
    pool: &PgPool,
    key: HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible characters")
        })?
        .to_owned();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::payload_too_large("the request body is over the size limit"))?;
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();

    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (key, method, path, request_body)
         VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
    )
    .bind(&key)
    .bind(&method)
    .bind(&path)
    .bind(body.as_ref())
    .execute(pool)
    .await
    .context("claim idempotency key")?
    .rows_affected()
        == 1;
    if !claimed {
        return replay(pool, &key, &method, &path, &body).await;
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    remember(pool, &key, response).await
}

/// Stores the first answer, or forgets the key when the answer was a fault of
/// ours, so that a retry gets a real second chance.
async fn remember(pool: &PgPool, key: &str, response: Response) -> Result<Response, ApiError> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .context("read the answer to store it")?;
    if parts.status.is_server_error() {
        sqlx::query("DELETE FROM idempotency_keys WHERE key = $1")
            .bind(key)
            .execute(pool)
            .await
            .context("release idempotency key")?;
    } else {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        sqlx::query(
            "UPDATE idempotency_keys SET status = $2, content_type = $3, response_body = $4
             WHERE key = $1",
        )
        .bind(key)
        .bind(parts.status.as_u16() as i16)
        .bind(content_type)
        .bind(bytes.as_ref())
        .execute(pool)
        .await
        .context("store idempotent answer")?;
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Answers a repeat with the first answer, waiting for it if the first request
/// is still running.
async fn replay(
    pool: &PgPool,
    key: &str,
    method: &str,
    path: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + WAIT_FOR_FIRST;
    loop {
        let stored: Option<Stored> = sqlx::query_as(
            "SELECT method, path, request_body, status, content_type, response_body
               FROM idempotency_keys WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await
        .context("read idempotency key")?;
        let Some(stored) = stored else {
            return Err(ApiError::conflict(
                "the first request with this Idempotency-Key failed; retry it",
            ));
        };
        if stored.method != method || stored.path != path || stored.request_body != body.as_ref() {
            return Err(ApiError::rule_broken(
                "this Idempotency-Key was used for a different request",
            ));
        }
        if let (Some(status), Some(response_body)) = (stored.status, stored.response_body) {
            return Ok(replayed(status, stored.content_type, response_body));
        }
        if Instant::now() > deadline {
            return Err(ApiError::conflict(
                "the first request with this Idempotency-Key is still running",
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn replayed(status: i16, content_type: Option<String>, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    if let Some(value) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

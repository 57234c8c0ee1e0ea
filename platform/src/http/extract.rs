//! Extractors that answer bad input with problem+json instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::IF_MATCH;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{ApiError, REQUEST_ID};
use crate::event_store::CommandContext;

/// A JSON body. Malformed JSON or a wrong type is 400, a missing JSON content type
/// is 415, and a body over the limit is 413, each as problem+json.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::unsupported_media_type("send the body as application/json")
            }
            JsonRejection::BytesRejection(_) => {
                ApiError::payload_too_large("the request body is over the size limit")
            }
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

/// Path parameters; an unreadable one is 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

/// Query parameters; an unreadable one is 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

/// Who asked and what they expect: the request id, which becomes the events'
/// correlation and causation ids, and the version named by `If-Match`.
#[derive(Debug, Clone)]
pub struct RequestContext(pub CommandContext);

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let expected_version = match parts.headers.get(IF_MATCH) {
            None => None,
            Some(value) => Some(parse_if_match(value.to_str().unwrap_or("")).ok_or_else(|| {
                ApiError::bad_request("If-Match must be an aggregate version, such as \"3\"")
            })?),
        };
        Ok(RequestContext(CommandContext {
            correlation_id: request_id.clone(),
            causation_id: request_id,
            expected_version,
        }))
    }
}

/// Reads a version from `If-Match`: `3`, `"3"` or `W/"3"`.
fn parse_if_match(value: &str) -> Option<i64> {
    let value = value.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    value
        .trim_matches('"')
        .parse()
        .ok()
        .filter(|v: &i64| *v >= 0)
}

#[cfg(test)]
mod tests {
    use super::parse_if_match;

    #[test]
    fn if_match_accepts_bare_quoted_and_weak_versions() {
        assert_eq!(parse_if_match("3"), Some(3));
        assert_eq!(parse_if_match("\"3\""), Some(3));
        assert_eq!(parse_if_match("W/\"12\""), Some(12));
        assert_eq!(parse_if_match("*"), None);
        assert_eq!(parse_if_match("-1"), None);
    }
}

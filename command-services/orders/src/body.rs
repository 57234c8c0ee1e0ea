//! A JSON body that may be left out, for commands whose every field is optional.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use platform::http::{ApiError, Json};
use serde::de::DeserializeOwned;

/// A JSON body, or `None` when the request has no body at all (or only
/// whitespace), whatever its content type says: clients that always send
/// `Content-Type: application/json` often send nothing with it. A body that is
/// there is read as [`Json`] is: malformed is 400, not JSON is 415.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| ApiError::payload_too_large("the request body is over the size limit"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let request = Request::from_parts(parts, Body::from(bytes));
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(Some(value)))
    }
}

//! `/api/admin/dead-letters`: the events a service's consumers parked, and their
//! retry. Every service with consumers mounts these routes.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Json, Path};
use crate::dead_letters::{DeadLetter, DeadLetterList, DeadLetters, RetryError};

/// The dead-letter routes with their OpenAPI description, ready to merge into a
/// service's router of any state.
pub fn dead_letters_router<S>(dead_letters: DeadLetters) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(retry_dead_letter))
        .with_state(dead_letters)
}

/// Lists the events this service's consumers parked after their last attempt,
/// with the error.
#[utoipa::path(
    get,
    path = "/api/admin/dead-letters",
    tag = "admin",
    responses(
        (status = 200, description = "Every dead letter, oldest first", body = DeadLetterList),
    )
)]
async fn list_dead_letters(
    State(dead_letters): State<DeadLetters>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let items = dead_letters.list().await?;
    Ok(Json(DeadLetterList { items }))
}

/// Applies a dead letter's event again through the handler of the consumer that
/// parked it, and deletes the dead letter when that succeeds.
#[utoipa::path(
    post,
    path = "/api/admin/dead-letters/{id}/retry",
    tag = "admin",
    params(("id" = i64, Path, description = "The dead letter's id")),
    responses(
        (status = 200, description = "The event was applied; the dead letter is gone", body = DeadLetter),
        (status = 404, description = "No dead letter has this id", body = super::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The handler failed again; the dead letter is kept with the new error", body = super::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database failed; nothing changed", body = super::Problem, content_type = "application/problem+json"),
    )
)]
async fn retry_dead_letter(
    State(dead_letters): State<DeadLetters>,
    Path(id): Path<i64>,
) -> Result<Json<DeadLetter>, ApiError> {
    match dead_letters.retry(id).await {
        Ok(letter) => Ok(Json(letter)),
        Err(error @ RetryError::NotFound(_)) => Err(ApiError::not_found(error.to_string())),
        Err(error @ RetryError::UnknownConsumer(_)) => Err(ApiError::conflict(error.to_string())),
        Err(RetryError::StillFailing(error)) => Err(ApiError::conflict(format!(
            "the event still fails: {error}"
        ))),
        Err(RetryError::Store(error)) => {
            tracing::warn!(error = format!("{error:#}"), "dead-letter retry failed");
            Err(ApiError::unavailable(
                "the database failed during the retry; nothing changed",
            ))
        }
    }
}

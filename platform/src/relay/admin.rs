//! `POST|GET /api/admin/relay/republish` on every command service: ask the relay to
//! republish the service's whole log into its stream, and follow its progress.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use sqlx::PgPool;

use super::republish::{republish_progress, request_republish, RepublishProgress};
use crate::http::{ApiError, Json};

/// The path of the republish request and its progress on each command service.
pub const REPUBLISH_PATH: &str = "/api/admin/relay/republish";

#[derive(Clone)]
struct RelayAdmin {
    pool: PgPool,
    stream_name: String,
}

/// The relay's admin routes for the stream `stream_name`, whose event store is
/// behind `pool`. Any replica may answer: the request is recorded in the database
/// and carried out by whichever replica leads the relay.
pub fn admin_router(pool: PgPool, stream_name: String) -> Router {
    Router::new()
        .route(REPUBLISH_PATH, post(request).get(progress))
        .with_state(RelayAdmin { pool, stream_name })
}

/// 202 with the progress of the republish that was requested, or of the one
/// already under way.
async fn request(
    State(admin): State<RelayAdmin>,
) -> Result<(StatusCode, Json<RepublishProgress>), ApiError> {
    let progress = request_republish(&admin.pool, &admin.stream_name).await?;
    Ok((StatusCode::ACCEPTED, Json(progress)))
}

/// The latest republish's progress; 404 when none was ever requested.
async fn progress(State(admin): State<RelayAdmin>) -> Result<Json<RepublishProgress>, ApiError> {
    republish_progress(&admin.pool, &admin.stream_name)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no republish of stream {} was requested",
                admin.stream_name
            ))
        })
}

//! `/healthz` (the process is up) and `/readyz` (its PostgreSQL and NATS answer).

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use sqlx::PgPool;

use super::ApiError;

/// The dependencies whose health decides whether a service is ready.
#[derive(Clone, Default)]
pub struct Readiness {
    /// Databases that must answer `SELECT 1`.
    pub databases: Vec<PgPool>,
    /// A NATS connection that must be connected.
    pub nats: Option<async_nats::Client>,
}

/// Routes `/healthz` and `/readyz` for the given dependencies.
pub fn health_router(readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn ready(
    State(readiness): State<Readiness>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    for pool in &readiness.databases {
        let ping = sqlx::query("SELECT 1").execute(pool);
        match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(Ok(_)) => {}
            _ => return Err(ApiError::unavailable("PostgreSQL does not answer")),
        }
    }
    if let Some(nats) = &readiness.nats {
        if nats.connection_state() != async_nats::connection::State::Connected {
            return Err(ApiError::unavailable("NATS is not connected"));
        }
    }
    Ok(axum::Json(json!({"status": "ready"})))
}

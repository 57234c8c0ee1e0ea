//! The payment event stream. A payment's id is its order's id.

use axum::extract::State;
use platform::http::{ApiError, Json, Path, Query};
use platform::EventStream;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The payment routes, documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(payment_events))
}

/// Where to start reading a payment's events.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// The first sequence to return; 1 when left out.
    from_sequence: Option<i64>,
}

/// An order's payment events in sequence order: its whole history, replayable.
#[utoipa::path(
    get, path = "/api/payments/{order_id}/events", tag = "payments",
    params(("order_id" = String, Path, description = "The order's id, which is also its payment's id"), EventsQuery),
    responses(
        (status = 200, description = "The events", body = EventStream),
        (status = 400, description = "A malformed query", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No payment for this order", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn payment_events(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventStream>, ApiError> {
    let stream = state
        .payments
        .event_stream(&order_id, query.from_sequence)
        .await?;
    stream
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no payment for order {order_id}")))
}

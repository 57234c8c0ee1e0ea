//! The payment event stream and state. A payment's id is its order's id.

use axum::extract::State;
use platform::http::{ApiError, Json, Path, Query};
use platform::{AggregateState, EventStream, StateQuery};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The payment routes, documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(payment_events))
        .routes(routes!(payment_state))
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

/// An order's payment as it was after event `version`, or as it is now: time travel.
#[utoipa::path(
    get, path = "/api/payments/{order_id}/state", tag = "payments",
    params(("order_id" = String, Path, description = "The order's id, which is also its payment's id"), StateQuery),
    responses(
        (status = 200, description = "The payment's state", body = AggregateState),
        (status = 400, description = "A version that is not a number", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No payment for this order, or not at that version", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A version below 1", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn payment_state(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Json<AggregateState>, ApiError> {
    let version = query.version()?;
    let found = state.payments.aggregate_state(&order_id, version).await?;
    found
        .map(Json)
        .ok_or_else(|| query.not_found(&format!("payment for order {order_id}")))
}

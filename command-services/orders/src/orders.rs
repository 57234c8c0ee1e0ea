//! Order commands and the order event stream.

use axum::extract::State;
use axum::http::StatusCode;
use domain::orders::{OrderCommand, OrderStatus};
use platform::event_store::CommandContext;
use platform::http::{ApiError, Json, Path, Query, RequestContext};
use platform::{AggregateState, EventStream, StateQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::body::OptionalJson;
use crate::errors::command_error;
use crate::validation::{self, PlaceOrderRequest};
use crate::AppState;

/// The order routes, documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order))
        .routes(routes!(cancel_order))
        .routes(routes!(ship_order))
        .routes(routes!(order_events))
        .routes(routes!(order_state))
}

/// Why the customer withdraws the order; the whole body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// The customer's words, at most 500 characters.
    reason: Option<String>,
}

/// A placed order, PENDING until inventory and payments answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlacedOrder {
    id: String,
    /// Always `PENDING`.
    status: String,
    version: i64,
}

/// The order's version after the command: its last event sequence.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderVersion {
    id: String,
    version: i64,
}

/// Where to start reading an order's events.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// The first sequence to return; 1 when left out.
    from_sequence: Option<i64>,
}

/// Places an order. It stays PENDING while inventory reserves its lines and
/// payments authorizes its total; its id is generated here.
#[utoipa::path(
    post, path = "/api/orders", tag = "orders",
    request_body = PlaceOrderRequest,
    responses(
        (status = 202, description = "Placed; the saga decides the rest", body = PlacedOrder),
        (status = 400, description = "Malformed JSON", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn place_order(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    Json(request): Json<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<PlacedOrder>), ApiError> {
    let order_id = Uuid::now_v7();
    let command = validation::place_order(order_id, &request)?;
    let id = order_id.to_string();
    let version = state
        .orders
        .execute(&id, command, &context)
        .await
        .map_err(|e| command_error(&id, e))?;
    let body = PlacedOrder {
        id,
        status: OrderStatus::Pending.to_string(),
        version,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// Cancels a PENDING or CONFIRMED order; inventory releases its stock and
/// payments voids its authorization.
#[utoipa::path(
    post, path = "/api/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "The order's id")),
    request_body = Option<CancelRequest>,
    responses(
        (status = 202, description = "Cancelled", body = OrderVersion),
        (status = 400, description = "Malformed JSON", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is neither PENDING nor CONFIRMED", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The reason is too long", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestContext(context): RequestContext,
    OptionalJson(request): OptionalJson<CancelRequest>,
) -> Result<(StatusCode, Json<OrderVersion>), ApiError> {
    let reason = validation::cancel_reason(request.unwrap_or_default().reason)?;
    execute(&state, &id, OrderCommand::Cancel { reason }, &context).await
}

/// Ships a CONFIRMED order; inventory commits its stock and payments captures
/// its total.
#[utoipa::path(
    post, path = "/api/orders/{id}/ship", tag = "orders",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 202, description = "Shipped", body = OrderVersion),
        (status = 404, description = "No such order", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not CONFIRMED", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn ship_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestContext(context): RequestContext,
) -> Result<(StatusCode, Json<OrderVersion>), ApiError> {
    execute(&state, &id, OrderCommand::Ship, &context).await
}

/// Runs a command on an existing order. An id that is not a UUID names no order.
async fn execute(
    state: &AppState,
    raw_id: &str,
    command: OrderCommand,
    context: &CommandContext,
) -> Result<(StatusCode, Json<OrderVersion>), ApiError> {
    let id = order_id(raw_id)?;
    let version = state
        .orders
        .execute(&id, command, context)
        .await
        .map_err(|e| command_error(&id, e))?;
    Ok((StatusCode::ACCEPTED, Json(OrderVersion { id, version })))
}

/// An order's events in sequence order: its whole history, replayable.
#[utoipa::path(
    get, path = "/api/orders/{id}/events", tag = "orders",
    params(("id" = String, Path, description = "The order's id"), EventsQuery),
    responses(
        (status = 200, description = "The events", body = EventStream),
        (status = 404, description = "No such order", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn order_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventStream>, ApiError> {
    let id = order_id(&id)?;
    let stream = state.orders.event_stream(&id, query.from_sequence).await?;
    stream
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))
}

/// An order as it was after event `version`, or as it is now: time travel.
#[utoipa::path(
    get, path = "/api/orders/{id}/state", tag = "orders",
    params(("id" = String, Path, description = "The order's id"), StateQuery),
    responses(
        (status = 200, description = "The order's state", body = AggregateState),
        (status = 400, description = "A version that is not a number", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not at that version", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A version below 1", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn order_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Json<AggregateState>, ApiError> {
    let id = order_id(&id)?;
    let version = query.version()?;
    let found = state.orders.aggregate_state(&id, version).await?;
    found
        .map(Json)
        .ok_or_else(|| query.not_found(&format!("order {id}")))
}

/// The aggregate id of the order `raw` names: a UUID in its canonical lower-case
/// form, so that any spelling of it finds the same order.
fn order_id(raw: &str) -> Result<String, ApiError> {
    Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| ApiError::not_found(format!("no order {raw}")))
}

//! `/api/payments/{order_id}`: the payment of one order, with read-your-writes
//! through `?min_version=`.

use anyhow::Context;
use axum::extract::State;
use platform::http::{ApiError, Json, Path, Query};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::{parse_id, AppState};
use platform::http::{find_at_min_version, VersionParams, Watched};

/// An order's payment as of its event `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Payment {
    /// The order paid for, also the payment's id.
    pub order_id: Uuid,
    /// The customer who pays.
    pub customer_id: Uuid,
    /// The amount authorized or declined, in cents.
    pub amount_cents: i64,
    /// `AUTHORIZED`, `DECLINED`, `VOIDED` or `CAPTURED`.
    #[schema(example = "AUTHORIZED")]
    pub status: String,
    /// Why a DECLINED payment was declined: `INSUFFICIENT_CREDIT`,
    /// `CUSTOMER_INACTIVE` or `UNKNOWN_CUSTOMER`; null otherwise.
    pub reason: Option<String>,
    /// The sequence of the payment's last event that the read model reflects.
    pub version: i64,
}

/// The read model these routes serve, by the name its projection announces
/// changes under (`platform::changes`).
pub const READ_MODEL: &str = "payments";

/// The routes of this resource, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_payment))
}

/// The payment of one order. With `min_version`, the answer waits (up to 2 s)
/// until the read model has applied that version of the payment; if it does not
/// arrive in time, the answer is the payment as it is, with its older `version`.
/// An order without a payment yet is 404.
#[utoipa::path(
    get,
    path = "/api/payments/{order_id}",
    tag = "payments",
    params(("order_id" = String, Path, description = "The order's id"), VersionParams),
    responses(
        (status = 200, description = "The payment", body = Payment),
        (status = 404, description = "No payment for this order", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_payment(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    Query(params): Query<VersionParams>,
) -> Result<Json<Payment>, ApiError> {
    let not_found = || ApiError::not_found(format!("no payment for order {order_id}"));
    let id = parse_id(&order_id, "order").map_err(|_| not_found())?;
    let aggregate_id = id.to_string();
    let watched = Watched {
        changes: &state.changes,
        read_model: READ_MODEL,
        aggregate_id: &aggregate_id,
    };
    let payment = find_at_min_version(
        params.min_version,
        watched,
        |payment: &Payment| payment.version,
        || find_payment(&state.pool, id),
    )
    .await?;
    payment.map(Json).ok_or_else(not_found)
}

async fn find_payment(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Option<Payment>> {
    sqlx::query_as(
        "SELECT order_id, customer_id, amount_cents, status, reason, version
           FROM payments WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(pool)
    .await
    .context("look up payment")
}

//! `/api/orders`: single orders with read-your-writes through `?min_version=`, and
//! the order list, newest first, filtered by customer or status and paged by id.

use anyhow::Context;
use axum::extract::State;
use chrono::{DateTime, Utc};
use platform::http::{ApiError, Json, Path, Query};
use serde::{Deserialize, Serialize};
use sqlx::types::Json as JsonColumn;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::{parse_id, AppState};
use platform::http::{find_at_min_version, VersionParams, Watched};

mod list;

pub use list::{ListParams, OrderPage};

/// Every column of an order, its lines gathered as JSON in the order placed.
const SELECT_ORDERS: &str = "
    SELECT o.id, o.customer_id, o.status, o.total_cents, o.reason, o.operator_needed,
           o.version, o.placed_at, o.updated_at,
           COALESCE((SELECT json_agg(json_build_object(
                                'sku', l.sku, 'quantity', l.quantity,
                                'unit_price_cents', l.unit_price_cents)
                            ORDER BY l.line_number)
                       FROM order_lines l WHERE l.order_id = o.id), '[]') AS lines
      FROM orders o";

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed; waiting for stock and payment.
    Pending,
    /// Stock is reserved and payment authorized.
    Confirmed,
    /// Stock or payment was refused.
    Rejected,
    /// The customer withdrew it.
    Cancelled,
    /// It left the warehouse.
    Shipped,
}

impl OrderStatus {
    const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
        OrderStatus::Shipped,
    ];

    /// The status as the read model and the API write it, such as `PENDING`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Shipped => "SHIPPED",
        }
    }

    /// The status written as `word`, if there is one.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == word)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    /// The product's sku.
    pub sku: String,
    /// Units ordered.
    pub quantity: i64,
    /// The unit price in cents when the line was reserved; null until then.
    pub unit_price_cents: Option<i64>,
}

/// A compensation another service refused for the order: the order needs an
/// operator to put it right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperatorNeeded {
    /// The step that could not be applied: `RELEASE_STOCK` or `VOID_PAYMENT`.
    pub step: String,
    /// What the refusing service said.
    pub error: String,
    /// When the order recorded the refusal.
    pub at: DateTime<Utc>,
}

/// An order as of its event `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    /// The order's id, a UUIDv7.
    pub id: Uuid,
    /// The customer who placed it.
    pub customer_id: Uuid,
    /// Where the order stands.
    pub status: OrderStatus,
    /// What was ordered, in the order placed.
    pub lines: Vec<OrderLine>,
    /// The sum of the lines in cents; null until every line's stock is reserved.
    pub total_cents: Option<i64>,
    /// Why a REJECTED order was rejected: `OUT_OF_STOCK`, `UNKNOWN_PRODUCT`,
    /// `INSUFFICIENT_CREDIT`, `UNKNOWN_CUSTOMER` or `CUSTOMER_INACTIVE`; null otherwise.
    pub reason: Option<String>,
    /// The latest compensation that could not be applied (stock not released, payment
    /// not voided), so an operator is needed; null otherwise.
    pub operator_needed: Option<OperatorNeeded>,
    /// The sequence of the order's last event that the read model reflects.
    pub version: i64,
    /// When the order was placed.
    pub placed_at: DateTime<Utc>,
    /// When its last event was recorded.
    pub updated_at: DateTime<Utc>,
}

/// An order as stored: the status is text and the lines are JSON.
#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    customer_id: Uuid,
    status: String,
    lines: JsonColumn<Vec<OrderLine>>,
    total_cents: Option<i64>,
    reason: Option<String>,
    operator_needed: Option<JsonColumn<OperatorNeeded>>,
    version: i64,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<OrderRow> for Order {
    type Error = anyhow::Error;

    fn try_from(row: OrderRow) -> anyhow::Result<Self> {
        let status = OrderStatus::parse(&row.status)
            .with_context(|| format!("order {} has status {:?}", row.id, row.status))?;
        Ok(Order {
            id: row.id,
            customer_id: row.customer_id,
            status,
            lines: row.lines.0,
            total_cents: row.total_cents,
            reason: row.reason,
            operator_needed: row.operator_needed.map(|column| column.0),
            version: row.version,
            placed_at: row.placed_at,
            updated_at: row.updated_at,
        })
    }
}

/// The read model these routes serve, by the name its projection announces
/// changes under (`platform::changes`).
pub const READ_MODEL: &str = "orders";

/// The routes of this resource, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list::list_orders))
        .routes(routes!(get_order))
}

/// One order. With `min_version`, the answer waits (up to 2 s) until the read
/// model has applied that version, so a client sees its own command's effect; if
/// it does not arrive in time, the answer is the order as it is, with its older
/// `version`. An order that still does not exist is 404.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id"), VersionParams),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No order has this id", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<VersionParams>,
) -> Result<Json<Order>, ApiError> {
    let order_id = parse_id(&id, "order")?;
    let aggregate_id = order_id.to_string();
    let watched = Watched {
        changes: &state.changes,
        read_model: READ_MODEL,
        aggregate_id: &aggregate_id,
    };
    let order = find_at_min_version(
        params.min_version,
        watched,
        |order: &Order| order.version,
        || find_order(&state.pool, order_id),
    )
    .await?;
    order
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order has id {id}")))
}

async fn find_order(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Option<Order>> {
    let row: Option<OrderRow> = sqlx::query_as(&format!("{SELECT_ORDERS} WHERE o.id = $1"))
        .bind(order_id)
        .fetch_optional(pool)
        .await
        .context("look up order")?;
    row.map(Order::try_from).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_parses_from_the_word_it_is_written_as() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("pending"), None);
    }
}

//! `/api/customers/{id}/notifications`: the messages sent to a customer, newest
//! first.

use anyhow::Context;
use axum::extract::State;
use chrono::{DateTime, Utc};
use platform::http::{ApiError, Json, Path};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::customers::find_customer;
use crate::{not_found, parse_customer_id, AppState};

/// One message to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Notification {
    /// The notification's id, a UUIDv7.
    pub id: Uuid,
    /// `WELCOME`, `ORDER_CONFIRMED`, `ORDER_REJECTED`, `ORDER_CANCELLED` or
    /// `ORDER_SHIPPED`.
    #[schema(example = "ORDER_CONFIRMED")]
    pub kind: String,
    /// The order it is about; null for a welcome.
    pub order_id: Option<Uuid>,
    /// The message, in words for the customer.
    pub message: String,
    /// When the event behind it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A customer's notifications, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationList {
    /// The notifications.
    pub items: Vec<Notification>,
}

/// The routes of this resource, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_notifications))
}

/// Every notification of one customer, newest first.
#[utoipa::path(
    get,
    path = "/api/customers/{id}/notifications",
    tag = "notifications",
    params(("id" = String, Path, description = "The customer's id")),
    responses(
        (status = 200, description = "The customer's notifications", body = NotificationList),
        (status = 404, description = "No customer has this id", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_notifications(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<NotificationList>, ApiError> {
    let customer_id = parse_customer_id(&id)?;
    if find_customer(&state.pool, customer_id).await?.is_none() {
        return Err(not_found(&id));
    }
    let items = sqlx::query_as(
        "SELECT id, kind, order_id, message, created_at
           FROM notifications WHERE customer_id = $1
          ORDER BY created_at DESC, id DESC",
    )
    .bind(customer_id)
    .fetch_all(&state.pool)
    .await
    .context("list notifications")?;
    Ok(Json(NotificationList { items }))
}

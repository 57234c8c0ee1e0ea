//! `/api/customers/{id}`: one customer's profile, credit and order counters, with
//! read-your-writes through `?min_version=`.

use anyhow::Context;
use axum::extract::State;
use platform::http::{ApiError, Json, Path, Query};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::{not_found, parse_customer_id, AppState};
use platform::http::{find_at_min_version, VersionParams, Watched};

/// A customer as of its event `version`, with counters from its orders and payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Customer {
    /// The customer's id, a UUIDv7.
    pub id: Uuid,
    /// How to address the customer.
    pub name: String,
    /// The normalized email address.
    pub email: String,
    /// The credit limit in cents.
    pub credit_limit_cents: i64,
    /// The limit minus the amounts of payments that are authorized or captured.
    pub available_credit_cents: i64,
    /// Whether the customer may place orders.
    pub active: bool,
    /// How many orders the customer has placed.
    pub orders_count: i64,
    /// The totals of the customer's CONFIRMED and SHIPPED orders, in cents.
    pub lifetime_spend_cents: i64,
    /// The sequence of the customer's last event that the read model reflects.
    pub version: i64,
}

/// The read model these routes serve, by the name its projection announces
/// changes under (`platform::changes`).
pub const READ_MODEL: &str = "customers";

/// The routes of this resource, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_customer))
}

/// One customer. With `min_version`, the answer waits (up to 2 s) until the read
/// model has applied that version of the customer, so a client sees its own
/// command's effect; if it does not arrive in time, the answer is the customer as
/// it is, with its older `version`. A customer that is still unknown is 404.
/// The counters follow the orders and payments streams, which `min_version`
/// does not wait for.
#[utoipa::path(
    get,
    path = "/api/customers/{id}",
    tag = "customers",
    params(("id" = String, Path, description = "The customer's id"), VersionParams),
    responses(
        (status = 200, description = "The customer", body = Customer),
        (status = 404, description = "No customer has this id", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<VersionParams>,
) -> Result<Json<Customer>, ApiError> {
    let customer_id = parse_customer_id(&id)?;
    let aggregate_id = customer_id.to_string();
    let watched = Watched {
        changes: &state.changes,
        read_model: READ_MODEL,
        aggregate_id: &aggregate_id,
    };
    let customer = find_at_min_version(
        params.min_version,
        watched,
        |customer: &Customer| customer.version,
        || find_customer(&state.pool, customer_id),
    )
    .await?;
    customer.map(Json).ok_or_else(|| not_found(&id))
}

/// The customer, once registered: counters alone, from orders or payments that
/// arrived before the registration, are not a customer yet.
pub(crate) async fn find_customer(
    pool: &PgPool,
    customer_id: Uuid,
) -> anyhow::Result<Option<Customer>> {
    sqlx::query_as(
        "SELECT id, name, email, credit_limit_cents, available_credit_cents, active,
                orders_count, lifetime_spend_cents, version
           FROM customers WHERE id = $1 AND registered",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await
    .context("look up customer")
}

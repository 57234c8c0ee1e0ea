//! The order list: its parameters, their checks, the keyset query and the cursor.

use anyhow::Context;
use axum::extract::State;
use platform::http::{ApiError, FieldError, Json, Query};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Order, OrderRow, OrderStatus, SELECT_ORDERS};
use crate::AppState;

/// Page size when the caller names none.
const DEFAULT_LIMIT: i64 = 20;

/// Largest page size a caller may ask for.
const MAX_LIMIT: i64 = 100;

/// One page of orders, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    /// The orders of this page.
    pub items: Vec<Order>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Filters and paging of the order list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this customer's orders.
    pub customer_id: Option<String>,
    /// Only orders in this status: `PENDING`, `CONFIRMED`, `REJECTED`, `CANCELLED`
    /// or `SHIPPED`.
    pub status: Option<String>,
    /// Orders per page, 1 to 100; 20 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// The list parameters, checked.
struct Filter {
    customer_id: Option<Uuid>,
    status: Option<OrderStatus>,
    limit: i64,
    /// Only orders older than this one: the last of the previous page.
    before: Option<Uuid>,
}

/// Lists orders newest first, one page at a time, optionally only one customer's
/// or only those in one status.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "orders",
    params(ListParams),
    responses(
        (status = 200, description = "One page of orders", body = OrderPage),
        (status = 400, description = "A cursor this service did not issue, or an unreadable parameter", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A limit outside 1..100, an unknown status or a customer_id that is not a UUID", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_orders(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<OrderPage>, ApiError> {
    let filter = check(params)?;
    // One row more than the page shows whether another page follows.
    let rows: Vec<OrderRow> = list_query(&filter)
        .build_query_as()
        .fetch_all(&state.pool)
        .await
        .context("list orders")?;
    let mut items = rows
        .into_iter()
        .map(Order::try_from)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let next_cursor = if items.len() as i64 > filter.limit {
        items.truncate(filter.limit as usize);
        items.last().map(|last| encode_cursor(last.id))
    } else {
        None
    };
    Ok(Json(OrderPage { items, next_cursor }))
}

/// Checks every field and reports all the wrong ones together; a cursor is checked
/// last, as it is not the caller's own value.
fn check(params: ListParams) -> Result<Filter, ApiError> {
    let mut errors = Vec::new();
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let message = format!("must be between 1 and {MAX_LIMIT}");
        errors.push(FieldError::new("limit", message));
    }
    let customer_id = params.customer_id.as_deref().and_then(|id| {
        let parsed = Uuid::parse_str(id).ok();
        if parsed.is_none() {
            errors.push(FieldError::new("customer_id", "must be a UUID"));
        }
        parsed
    });
    let status = params.status.as_deref().and_then(|word| {
        let parsed = OrderStatus::parse(word);
        if parsed.is_none() {
            let message = "must be PENDING, CONFIRMED, REJECTED, CANCELLED or SHIPPED";
            errors.push(FieldError::new("status", message));
        }
        parsed
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let before = params.cursor.as_deref().map(decode_cursor).transpose()?;
    Ok(Filter {
        customer_id,
        status,
        limit,
        before,
    })
}

/// The page's query. Only the filters in use are in the SQL, so each combination
/// gets a plan that uses its index.
fn list_query(filter: &Filter) -> QueryBuilder<'static, Postgres> {
    let mut query = QueryBuilder::new(SELECT_ORDERS);
    query.push(" WHERE true");
    if let Some(customer_id) = filter.customer_id {
        query.push(" AND o.customer_id = ").push_bind(customer_id);
    }
    if let Some(status) = filter.status {
        query.push(" AND o.status = ").push_bind(status.as_str());
    }
    if let Some(before) = filter.before {
        query.push(" AND o.id < ").push_bind(before);
    }
    query
        .push(" ORDER BY o.id DESC LIMIT ")
        .push_bind(filter.limit + 1);
    query
}

/// The cursor is the page's last order id as 32 hex digits: opaque to callers,
/// and cheap to check.
fn encode_cursor(id: Uuid) -> String {
    id.simple().to_string()
}

fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    let invalid = || ApiError::bad_request("cursor is not one this service issued");
    if cursor.len() != 32 {
        return Err(invalid());
    }
    Uuid::try_parse(cursor).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_the_id_it_was_made_from() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
    }

    #[test]
    fn cursors_that_are_not_32_hex_digits_are_refused() {
        let hyphenated = Uuid::now_v7().to_string();
        for cursor in ["", "abc", &"z".repeat(32), &hyphenated] {
            assert!(decode_cursor(cursor).is_err(), "{cursor:?} was accepted");
        }
    }
}

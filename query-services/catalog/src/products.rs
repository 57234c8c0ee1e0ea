//! `/api/products`: the product list, paged by sku, and single products with
//! read-your-writes through `?min_version=`.

use anyhow::Context;
use axum::extract::State;
use domain::values::Sku;
use platform::http::{
    find_at_min_version, ApiError, FieldError, Json, Path, Query, VersionParams, Watched,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Page size when the caller names none.
const DEFAULT_LIMIT: i64 = 20;

/// Largest page size a caller may ask for.
const MAX_LIMIT: i64 = 100;

/// A product's price and stock, as of its event `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Product {
    /// The stock keeping unit, such as `MUG-1`.
    pub sku: String,
    /// The display name.
    pub name: String,
    /// The unit price in cents.
    pub price_cents: i64,
    /// Units in the warehouse, reserved ones included.
    pub on_hand: i64,
    /// Units held for orders that have not shipped.
    pub reserved: i64,
    /// Units that can still be reserved: `on_hand - reserved`.
    pub available: i64,
    /// The sequence of the product's last event that the read model reflects.
    pub version: i64,
}

/// One page of products in sku order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    /// The products of this page.
    pub items: Vec<Product>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Paging of the product list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Products per page, 1 to 100; 20 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// The read model these routes serve, by the name its projection announces
/// changes under (`platform::changes`).
pub const READ_MODEL: &str = "products";

/// The routes of this resource, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(get_product))
}

/// Lists products by ascending sku, one page at a time.
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "products",
    params(ListParams),
    responses(
        (status = 200, description = "One page of products", body = ProductPage),
        (status = 400, description = "A cursor this service did not issue, or an unreadable parameter", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A limit outside 1..100", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_products(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<ProductPage>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let message = format!("must be between 1 and {MAX_LIMIT}");
        return Err(ApiError::validation(vec![FieldError::new(
            "limit", message,
        )]));
    }
    let after = match params.cursor.as_deref() {
        Some(cursor) => decode_cursor(cursor)?,
        None => String::new(),
    };
    // One row more than the page shows whether another page follows.
    let mut items: Vec<Product> = sqlx::query_as(
        "SELECT sku, name, price_cents, on_hand, reserved, available, version
           FROM products WHERE sku > $1 ORDER BY sku LIMIT $2",
    )
    .bind(&after)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await
    .context("list products")?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|last| encode_cursor(&last.sku))
    } else {
        None
    };
    Ok(Json(ProductPage { items, next_cursor }))
}

/// One product. With `min_version`, the answer waits (up to 2 s) until the read
/// model has applied that version, so a client sees its own command's effect.
/// If the version does not arrive in time, the answer is the product as it is
/// (200, with its older `version`, which the client can compare) rather than an
/// error: a slow projection is not the caller's fault, and stale data that says
/// how stale it is stays useful. A product that still does not exist is 404.
#[utoipa::path(
    get,
    path = "/api/products/{sku}",
    tag = "products",
    params(("sku" = String, Path, description = "The product's sku"), VersionParams),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 404, description = "No product has this sku", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_product(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    Query(params): Query<VersionParams>,
) -> Result<Json<Product>, ApiError> {
    let watched = Watched {
        changes: &state.changes,
        read_model: READ_MODEL,
        aggregate_id: &sku,
    };
    let product = find_at_min_version(
        params.min_version,
        watched,
        |p: &Product| p.version,
        || find_product(&state.pool, &sku),
    )
    .await?;
    product
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no product has sku {sku}")))
}

async fn find_product(pool: &PgPool, sku: &str) -> anyhow::Result<Option<Product>> {
    sqlx::query_as(
        "SELECT sku, name, price_cents, on_hand, reserved, available, version
           FROM products WHERE sku = $1",
    )
    .bind(sku)
    .fetch_optional(pool)
    .await
    .context("look up product")
}

/// The cursor is the page's last sku in hex: opaque to callers, and cheap to check.
fn encode_cursor(sku: &str) -> String {
    sku.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::bad_request("cursor is not one this service issued");
    if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&cursor[at..at + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    let sku = String::from_utf8(bytes).map_err(|_| invalid())?;
    Sku::parse(&sku).map_err(|_| invalid())?;
    Ok(sku)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_the_sku_it_was_made_from() {
        assert_eq!(decode_cursor(&encode_cursor("MUG-1")).unwrap(), "MUG-1");
    }

    #[test]
    fn cursors_that_are_not_hex_skus_are_refused() {
        for cursor in ["", "abc", "zz", "6d7567", "é1"] {
            assert!(decode_cursor(cursor).is_err(), "{cursor:?} was accepted");
        }
    }
}

//! Product commands and the product event stream.

use axum::extract::State;
use axum::http::StatusCode;
use domain::inventory::{Product, ProductCommand};
use domain::values::{Money, ProductName, Quantity, Sku};
use platform::http::{ApiError, FieldError, Json, Path, Query, RequestContext};
use platform::{AggregateState, EventStream, StateQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::errors::command_error;
use crate::AppState;

/// The product routes, documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_product))
        .routes(routes!(restock))
        .routes(routes!(change_price))
        .routes(routes!(product_events))
        .routes(routes!(product_state))
}

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddProductRequest {
    /// `^[A-Z0-9][A-Z0-9-]{0,31}$`
    sku: String,
    name: String,
    /// Unit price in cents, above 0.
    price_cents: i64,
    /// Units in stock at the start, 0 to 1,000,000; 0 when left out.
    #[serde(default)]
    initial_stock: i64,
}

/// Units that arrived.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RestockRequest {
    /// 1 to 1,000,000.
    quantity: i64,
}

/// A new unit price.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePriceRequest {
    /// Unit price in cents, above 0.
    price_cents: i64,
}

/// The product's version after the command: its last event sequence.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductVersion {
    sku: String,
    version: i64,
}

/// Where to start reading a product's events.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// The first sequence to return; 1 when left out.
    from_sequence: Option<i64>,
}

/// Adds a product with its price and starting stock.
#[utoipa::path(
    post, path = "/api/products", tag = "inventory",
    request_body = AddProductRequest,
    responses(
        (status = 201, description = "Added", body = ProductVersion),
        (status = 400, description = "Malformed JSON", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The sku exists", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn add_product(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    Json(request): Json<AddProductRequest>,
) -> Result<(StatusCode, Json<ProductVersion>), ApiError> {
    let command = parse_add_product(&request)?;
    let version = state
        .products
        .execute(&request.sku, command, &context)
        .await
        .map_err(|e| command_error(&request.sku, e))?;
    let body = ProductVersion {
        sku: request.sku,
        version,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

fn parse_add_product(request: &AddProductRequest) -> Result<ProductCommand, ApiError> {
    let mut errors = Vec::new();
    let sku = Sku::parse(&request.sku).map_err(|e| errors.push(FieldError::new("sku", e)));
    let name =
        ProductName::parse(&request.name).map_err(|e| errors.push(FieldError::new("name", e)));
    let price = positive_price(request.price_cents).map_err(|e| errors.push(e));
    let initial_stock = u32::try_from(request.initial_stock)
        .ok()
        .filter(|stock| *stock <= Product::MAX_INITIAL_STOCK)
        .ok_or_else(|| {
            errors.push(FieldError::new(
                "initial_stock",
                format!("must be between 0 and {}", Product::MAX_INITIAL_STOCK),
            ))
        });
    match (sku, name, price, initial_stock) {
        (Ok(sku), Ok(name), Ok(price), Ok(initial_stock)) => Ok(ProductCommand::AddProduct {
            sku,
            name,
            price,
            initial_stock,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

fn positive_price(cents: i64) -> Result<Money, FieldError> {
    Money::from_cents(cents)
        .ok()
        .filter(|price| price.is_positive())
        .ok_or_else(|| FieldError::new("price_cents", "must be a whole number of cents above 0"))
}

/// Adds units to a product's stock.
#[utoipa::path(
    post, path = "/api/products/{sku}/restock", tag = "inventory",
    params(("sku" = String, Path, description = "The product's sku")),
    request_body = RestockRequest,
    responses(
        (status = 200, description = "Restocked", body = ProductVersion),
        (status = 400, description = "Malformed JSON", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid quantity", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn restock(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    RequestContext(context): RequestContext,
    Json(request): Json<RestockRequest>,
) -> Result<Json<ProductVersion>, ApiError> {
    let quantity = Quantity::parse(request.quantity)
        .map_err(|e| ApiError::validation(vec![FieldError::new("quantity", e)]))?;
    execute(&state, sku, ProductCommand::Restock { quantity }, &context).await
}

/// Sets a product's unit price.
#[utoipa::path(
    put, path = "/api/products/{sku}/price", tag = "inventory",
    params(("sku" = String, Path, description = "The product's sku")),
    request_body = ChangePriceRequest,
    responses(
        (status = 200, description = "Price set", body = ProductVersion),
        (status = 400, description = "Malformed JSON", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid price", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn change_price(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    RequestContext(context): RequestContext,
    Json(request): Json<ChangePriceRequest>,
) -> Result<Json<ProductVersion>, ApiError> {
    let price = positive_price(request.price_cents).map_err(|e| ApiError::validation(vec![e]))?;
    execute(&state, sku, ProductCommand::ChangePrice { price }, &context).await
}

/// Runs a command on an existing product. A sku that cannot be valid names no product.
async fn execute(
    state: &AppState,
    sku: String,
    command: ProductCommand,
    context: &platform::event_store::CommandContext,
) -> Result<Json<ProductVersion>, ApiError> {
    if Sku::parse(&sku).is_err() {
        return Err(ApiError::not_found(format!("no product {sku}")));
    }
    let version = state
        .products
        .execute(&sku, command, context)
        .await
        .map_err(|e| command_error(&sku, e))?;
    Ok(Json(ProductVersion { sku, version }))
}

/// A product's events in sequence order: its whole history, replayable.
#[utoipa::path(
    get, path = "/api/products/{sku}/events", tag = "inventory",
    params(("sku" = String, Path, description = "The product's sku"), EventsQuery),
    responses(
        (status = 200, description = "The events", body = EventStream),
        (status = 404, description = "No such product", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn product_events(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventStream>, ApiError> {
    let stream = state
        .products
        .event_stream(&sku, query.from_sequence)
        .await?;
    stream
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no product {sku}")))
}

/// A product as it was after event `version`, or as it is now: time travel.
#[utoipa::path(
    get, path = "/api/products/{sku}/state", tag = "inventory",
    params(("sku" = String, Path, description = "The product's sku"), StateQuery),
    responses(
        (status = 200, description = "The product's state", body = AggregateState),
        (status = 400, description = "A version that is not a number", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product, or not at that version", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A version below 1", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn product_state(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Json<AggregateState>, ApiError> {
    let version = query.version()?;
    let found = state.products.aggregate_state(&sku, version).await?;
    found
        .map(Json)
        .ok_or_else(|| query.not_found(&format!("product {sku}")))
}

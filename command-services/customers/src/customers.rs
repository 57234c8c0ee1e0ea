//! Customer commands and the customer event stream.

use axum::extract::State;
use axum::http::StatusCode;
use domain::customers::CustomerCommand;
use domain::values::{Email, Money, PersonName};
use platform::event_store::CommandContext;
use platform::http::{ApiError, FieldError, Json, Path, Query, RequestContext};
use platform::{AggregateState, EventStream, StateQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::errors::command_error;
use crate::AppState;

/// The customer routes, documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_customer))
        .routes(routes!(change_credit_limit))
        .routes(routes!(deactivate_customer))
        .routes(routes!(customer_events))
        .routes(routes!(customer_state))
}

/// A new customer.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterCustomerRequest {
    /// How to address the customer: 1 to 200 characters once trimmed.
    name: String,
    /// An address like `name@example.com`; stored trimmed and lower-cased.
    email: String,
    /// The most the customer's open payments may add up to, in cents, 0 or more.
    credit_limit_cents: i64,
}

/// A new credit limit.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeCreditLimitRequest {
    /// In cents, 0 or more.
    credit_limit_cents: i64,
}

/// The customer's version after the command: its last event sequence.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerVersion {
    id: Uuid,
    version: i64,
}

/// Where to start reading a customer's events.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// The first sequence to return; 1 when left out.
    from_sequence: Option<i64>,
}

/// Registers a customer under a new id, active, with a credit limit.
#[utoipa::path(
    post, path = "/api/customers", tag = "customers",
    request_body = RegisterCustomerRequest,
    responses(
        (status = 201, description = "Registered", body = CustomerVersion),
        (status = 400, description = "Malformed JSON", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn register_customer(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    Json(request): Json<RegisterCustomerRequest>,
) -> Result<(StatusCode, Json<CustomerVersion>), ApiError> {
    let id = Uuid::now_v7();
    let command = parse_registration(id, &request)?;
    let body = execute(&state, id, command, &context).await?;
    Ok((StatusCode::CREATED, body))
}

fn parse_registration(
    customer_id: Uuid,
    request: &RegisterCustomerRequest,
) -> Result<CustomerCommand, ApiError> {
    let mut errors = Vec::new();
    let name =
        PersonName::parse(&request.name).map_err(|e| errors.push(FieldError::new("name", e)));
    let email = Email::parse(&request.email).map_err(|e| errors.push(FieldError::new("email", e)));
    let credit_limit = credit_limit(request.credit_limit_cents).map_err(|e| errors.push(e));
    match (name, email, credit_limit) {
        (Ok(name), Ok(email), Ok(credit_limit)) => Ok(CustomerCommand::RegisterCustomer {
            customer_id,
            name,
            email,
            credit_limit,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

fn credit_limit(cents: i64) -> Result<Money, FieldError> {
    Money::from_cents(cents).map_err(|_| {
        FieldError::new(
            "credit_limit_cents",
            "must be a whole number of cents, 0 or more",
        )
    })
}

/// Sets a customer's credit limit; an active customer only.
#[utoipa::path(
    put, path = "/api/customers/{id}/credit-limit", tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's id")),
    request_body = ChangeCreditLimitRequest,
    responses(
        (status = 200, description = "Limit set", body = CustomerVersion),
        (status = 400, description = "Malformed JSON", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The customer is deactivated", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn change_credit_limit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestContext(context): RequestContext,
    Json(request): Json<ChangeCreditLimitRequest>,
) -> Result<Json<CustomerVersion>, ApiError> {
    let id = customer_id(&id)?;
    let credit_limit =
        credit_limit(request.credit_limit_cents).map_err(|e| ApiError::validation(vec![e]))?;
    let command = CustomerCommand::ChangeCreditLimit { credit_limit };
    execute(&state, id, command, &context).await
}

/// Stops a customer from placing orders; deactivating again changes nothing.
#[utoipa::path(
    post, path = "/api/customers/{id}/deactivate", tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's id")),
    responses(
        (status = 200, description = "Deactivated", body = CustomerVersion),
        (status = 404, description = "No such customer", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn deactivate_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestContext(context): RequestContext,
) -> Result<Json<CustomerVersion>, ApiError> {
    let id = customer_id(&id)?;
    execute(&state, id, CustomerCommand::Deactivate, &context).await
}

/// A customer's events in sequence order: their whole history, replayable.
#[utoipa::path(
    get, path = "/api/customers/{id}/events", tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's id"), EventsQuery),
    responses(
        (status = 200, description = "The events", body = EventStream),
        (status = 404, description = "No such customer", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn customer_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventStream>, ApiError> {
    let id = customer_id(&id)?;
    let stream = state
        .customers
        .event_stream(&id.to_string(), query.from_sequence)
        .await?;
    stream
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no customer {id}")))
}

/// A customer as they were after event `version`, or as they are now: time travel.
#[utoipa::path(
    get, path = "/api/customers/{id}/state", tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's id"), StateQuery),
    responses(
        (status = 200, description = "The customer's state", body = AggregateState),
        (status = 400, description = "A version that is not a number", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer, or not at that version", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A version below 1", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn customer_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Json<AggregateState>, ApiError> {
    let id = customer_id(&id)?.to_string();
    let version = query.version()?;
    let found = state.customers.aggregate_state(&id, version).await?;
    found
        .map(Json)
        .ok_or_else(|| query.not_found(&format!("customer {id}")))
}

/// Reads the id in the path. Text that is no UUID names no customer, so it is 404
/// like any unknown id; parsing also gives the one spelling the store keys on.
fn customer_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("no customer {raw}")))
}

/// Runs a command on the customer `id` and answers with its new version.
async fn execute(
    state: &AppState,
    id: Uuid,
    command: CustomerCommand,
    context: &CommandContext,
) -> Result<Json<CustomerVersion>, ApiError> {
    let aggregate_id = id.to_string();
    let version = state
        .customers
        .execute(&aggregate_id, command, context)
        .await
        .map_err(|e| command_error(&aggregate_id, e))?;
    Ok(Json(CustomerVersion { id, version }))
}

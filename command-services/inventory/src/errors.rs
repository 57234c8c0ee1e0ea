//! How the product aggregate's refusals become HTTP answers.

use domain::inventory::ProductError;
use platform::event_store::CommandError;
use platform::http::ApiError;

/// Maps every outcome of a product command that wrote nothing to its status code.
pub fn command_error(sku: &str, error: CommandError<ProductError>) -> ApiError {
    match error {
        CommandError::Rejected(rejection) => match rejection {
            ProductError::AlreadyExists => {
                ApiError::conflict(format!("product {sku} already exists"))
            }
            ProductError::NotFound => ApiError::not_found(format!("no product {sku}")),
            ProductError::PriceMustBePositive | ProductError::StockLimitExceeded => {
                ApiError::rule_broken(rejection.to_string())
            }
            ProductError::ReservationNotFound { .. } => ApiError::conflict(rejection.to_string()),
        },
        CommandError::VersionMismatch { .. } => ApiError::precondition_failed(error.to_string()),
        CommandError::Conflict => ApiError::conflict(error.to_string()),
        CommandError::Store(cause) => ApiError::internal(cause),
    }
}

//! How the customer aggregate's refusals become HTTP answers.

use domain::customers::CustomerError;
use platform::event_store::CommandError;
use platform::http::ApiError;

/// Maps every outcome of a customer command that wrote nothing to its status code.
pub fn command_error(id: &str, error: CommandError<CustomerError>) -> ApiError {
    match error {
        CommandError::Rejected(rejection) => match rejection {
            CustomerError::NotFound => ApiError::not_found(format!("no customer {id}")),
            // Ids are generated here as UUIDv7, so only a collision could get here.
            CustomerError::AlreadyRegistered => {
                ApiError::conflict(format!("customer {id} is already registered"))
            }
            CustomerError::Inactive => ApiError::conflict(format!("customer {id} is deactivated")),
        },
        CommandError::VersionMismatch { .. } => ApiError::precondition_failed(error.to_string()),
        CommandError::Conflict => ApiError::conflict(error.to_string()),
        CommandError::Store(cause) => ApiError::internal(cause),
    }
}

//! How the order aggregate's refusals become HTTP answers.

use domain::orders::OrderError;
use platform::event_store::CommandError;
use platform::http::ApiError;

/// Maps every outcome of an order command that wrote nothing to its status code.
pub fn command_error(order_id: &str, error: CommandError<OrderError>) -> ApiError {
    match error {
        CommandError::Rejected(rejection) => rejected(order_id, rejection),
        CommandError::VersionMismatch { .. } => ApiError::precondition_failed(error.to_string()),
        CommandError::Conflict => ApiError::conflict(error.to_string()),
        CommandError::Store(cause) => ApiError::internal(cause),
    }
}

fn rejected(order_id: &str, rejection: OrderError) -> ApiError {
    match rejection {
        OrderError::AlreadyPlaced => ApiError::conflict(format!("order {order_id} already exists")),
        OrderError::NotFound => ApiError::not_found(format!("no order {order_id}")),
        OrderError::CannotCancel { .. } | OrderError::CannotShip { .. } => {
            ApiError::conflict(rejection.to_string())
        }
        // Only the saga's own commands carry these, never a request, so reaching
        // one from HTTP is a fault of ours.
        OrderError::QuantityMismatch { .. }
        | OrderError::NegativeUnitPrice { .. }
        | OrderError::TotalOverflow
        | OrderError::PaymentAmountMismatch { .. } => {
            ApiError::internal(anyhow::anyhow!("order {order_id}: {rejection}"))
        }
    }
}

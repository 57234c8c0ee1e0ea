//! The orders context: the `Order` aggregate, which records what a customer asked for
//! and follows the saga's answers from inventory and payments to a final status.

mod commands;
mod errors;
mod events;
mod order;
mod status;
mod versions;

#[cfg(test)]
mod invariant_tests;
#[cfg(test)]
mod order_tests;

pub use commands::OrderCommand;
pub use errors::OrderError;
pub use events::{OrderEvent, PlacedLine};
pub use order::{CompensationFailure, Order, OrderedLine};
pub use status::{CompensationStep, OrderRejectionReason, OrderStatus};
pub use versions::OrderCancelledV1;

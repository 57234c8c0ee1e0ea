//! The orders context: the `Order` aggregate, which records what a customer asked for
//! and follows the saga's answers from inventory and payments to a final status.

mod commands;
mod errors;
mod events;
mod order;
mod status;

#[cfg(test)]
mod invariant_tests;
#[cfg(test)]
mod order_tests;

pub use commands::OrderCommand;
pub use errors::OrderError;
pub use events::{OrderEvent, PlacedLine};
pub use order::{Order, OrderedLine};
pub use status::{OrderRejectionReason, OrderStatus};

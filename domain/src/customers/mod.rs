//! The customers context: the `Customer` aggregate, which owns a customer's identity,
//! contact details, credit limit and whether they may still order.

mod commands;
mod customer;
mod errors;
mod events;

#[cfg(test)]
mod customer_tests;

pub use commands::CustomerCommand;
pub use customer::Customer;
pub use errors::CustomerError;
pub use events::CustomerEvent;

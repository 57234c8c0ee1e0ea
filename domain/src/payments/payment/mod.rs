//! The `Payment` aggregate: the authorization of one order's total, and whether it was
//! later voided or captured.

mod commands;
mod errors;
mod events;
mod order_payment;

#[cfg(test)]
mod order_payment_tests;

pub use commands::PaymentCommand;
pub use errors::PaymentError;
pub use events::PaymentEvent;
pub use order_payment::{Payment, PaymentStatus};

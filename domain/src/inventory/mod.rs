//! The inventory context: the `Product` aggregate, which owns a SKU's stock and price
//! and decides reservations for orders.

mod commands;
mod errors;
mod events;
mod product;

#[cfg(test)]
mod invariant_tests;
#[cfg(test)]
mod product_tests;

pub use commands::ProductCommand;
pub use errors::ProductError;
pub use events::{ProductEvent, RejectionReason};
pub use product::{Product, Reservation, ReservationStatus};

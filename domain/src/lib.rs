//! Pure business rules of the shop: validated values, aggregates, commands, events and
//! errors. Nothing here does I/O; services load history, call `handle` and store the
//! events it emits.
#![warn(missing_docs)]

pub mod customers;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod values;
pub mod versioning;

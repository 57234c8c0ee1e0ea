//! The customers command service: who may order, and up to which credit limit. It
//! appends to its own event store and relays the log to the `CUSTOMERS` JetStream
//! stream, from which payments learns each customer's credit limit.

mod app;
mod config;
mod customers;
mod errors;

pub use app::{build, router, AppState};
pub use config::Config;

/// The service's name: the first token of its subjects and of its event ids.
pub const SERVICE: &str = "customers";

//! The orders command service: customers place, cancel and ship orders, and the
//! service follows the order saga's answers from inventory and payments. It appends
//! to its own event store and relays the log to the `ORDERS` JetStream stream.

mod app;
mod body;
mod config;
mod errors;
mod orders;
pub mod reactions;
mod validation;

pub use app::{build, router, AppState};
pub use config::Config;

/// The service's name: the first token of its subjects and of its event ids.
pub const SERVICE: &str = "orders";

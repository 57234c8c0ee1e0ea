//! The payments command service: each customer's credit as payments learns it from
//! the customers' events, and each order's payment, decided by the order saga. It
//! appends to its own event store and relays the log to the `PAYMENTS` JetStream
//! stream. It has no command routes: only the saga writes.

mod app;
mod config;
mod payments;
pub mod reactions;

pub use app::{build, router, AppState};
pub use config::Config;

/// The service's name: the first token of its subjects and of its event ids.
pub const SERVICE: &str = "payments";

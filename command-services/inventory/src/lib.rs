//! The inventory command service: products, their stock and the reservations the
//! order saga makes. It appends to its own event store and relays the log to the
//! `INVENTORY` JetStream stream.

mod app;
mod config;
mod errors;
mod products;

pub use app::{build, router, AppState};
pub use config::Config;

/// The service's name: the first token of its subjects and of its event ids.
pub const SERVICE: &str = "inventory";

//! The inventory command service: products, their stock and the reservations the
//! order saga makes. It appends to its own event store, relays the log to the
//! `INVENTORY` JetStream stream, and reacts to the `ORDERS` stream's order events.

mod app;
mod config;
mod errors;
mod products;
mod reactions;

pub use app::{build, router, AppState};
pub use config::Config;
pub use reactions::{OrderReactions, SAGA_DURABLE_NAME, SAGA_REACTS_TO};

/// The service's name: the first token of its subjects and of its event ids.
pub const SERVICE: &str = "inventory";

/// The service's own tables, versions from 1000 up so they share `_sqlx_migrations`
/// with the event store's and the consumer tables' migrations.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

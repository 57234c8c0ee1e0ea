//! Projection workers: they consume the command services' JetStream streams and
//! build the read models that the query services serve.

pub mod admin;
pub mod app;
pub mod customers;
pub mod diff;
mod events;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod products;
pub mod rebuild;
pub mod record;
pub mod replay;
pub mod supervisor;

pub use app::{build, Config};

/// The read-model tables of this crate, versions from 1000 up so they share
/// `_sqlx_migrations` with [`platform::db::READ_MODEL_MIGRATIONS`].
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

//! The gateway: the single entry point of the shop. It routes writes to the command
//! services and reads to the query services, gives every request an id, and serves
//! the merged OpenAPI document with a browsable docs page.

mod app;
mod config;
mod dead_letters;
mod openapi;
mod relay;
mod routes;
mod trace;

pub use app::build;
pub use config::Config;
pub use routes::{router, Upstreams};

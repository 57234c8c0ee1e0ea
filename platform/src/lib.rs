//! Shared infrastructure for every Shop service: the event store and its relay to
//! JetStream, the JetStream consumer loop, HTTP conventions, configuration,
//! telemetry and test support. Business rules live in `domain`, never here.

pub mod changes;
pub mod config;
pub mod consumer;
pub mod db;
pub mod dead_letters;
pub mod devstack;
pub mod envelope;
pub mod event_store;
pub mod http;
pub mod nats;
pub mod relay;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
pub mod trace;

pub use envelope::{AggregateState, Envelope, EventStream, StateQuery};

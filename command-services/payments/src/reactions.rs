//! The payments side of the order saga. Two durable consumers turn other services'
//! events into commands on this service's aggregates:
//!
//! - customer events keep each customer's [`CustomerCredit`] in step with the
//!   customers service, which payments never reads directly;
//! - order events authorize or decline an order's [`Payment`] when its total is
//!   known, void it when the order is cancelled and capture it when it ships.
//!
//! The commands commit in the event store, outside the consumer's batch
//! transaction, so a redelivered event runs them again. Every reaction is
//! therefore idempotent through aggregate state: a second delivery decides nothing
//! new.

mod customers;
mod orders;

use std::sync::Arc;
use std::time::Duration;

use domain::payments::{CustomerCredit, Payment};
use platform::config::CommonArgs;
use platform::consumer::{Consumer, ConsumerConfig, Handler};
use platform::dead_letters::DeadLetters;
use platform::event_store::{AggregateStore, CommandContext, CommandError};
use platform::service::CommandInfra;
use platform::Envelope;
use sqlx::PgPool;

pub use customers::CustomerReactions;
pub use orders::OrderReactions;

use crate::SERVICE;

/// The durable consumer of the customers' stream.
pub const FROM_CUSTOMERS: &str = "payments-from-customers";

/// The durable consumer of the orders' stream.
pub const FROM_ORDERS: &str = "payments-from-orders";

/// The service's two aggregate stores, which share one event store.
#[derive(Clone)]
pub struct Stores {
    /// Each customer's credit, keyed by customer id.
    pub credits: Arc<AggregateStore<CustomerCredit>>,
    /// Each order's payment, keyed by order id.
    pub payments: Arc<AggregateStore<Payment>>,
}

impl Stores {
    /// Both stores on the event store behind `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            credits: Arc::new(AggregateStore::new(SERVICE, pool.clone(), ())),
            payments: Arc::new(AggregateStore::new(SERVICE, pool, ())),
        }
    }

    /// Both stores of the running service, which wake its relay in memory.
    pub fn of(infra: &CommandInfra) -> Self {
        Self {
            credits: Arc::new(infra.store(SERVICE, ())),
            payments: Arc::new(infra.store(SERVICE, ())),
        }
    }
}

/// The consumers of the customers' and the orders' streams, in that order, and
/// their dead letters. Their checkpoints live in the service's own database, next
/// to the event store.
pub fn consumers(
    infra: &CommandInfra,
    common: &CommonArgs,
    stores: &Stores,
    unknown_customer_wait: Duration,
) -> ([Consumer; 2], DeadLetters) {
    let customers = common.stream("customers");
    let customer_filter = format!("{}.Customer.>", customers.subject_prefix);
    let orders = common.stream("orders");
    let order_filter = format!("{}.Order.>", orders.subject_prefix);
    let customer_reactions: Arc<dyn Handler> =
        Arc::new(CustomerReactions::new(stores.credits.clone()));
    let order_reactions: Arc<dyn Handler> =
        Arc::new(OrderReactions::new(stores.clone(), unknown_customer_wait));
    let dead_letters = DeadLetters::new(infra.pool.clone())
        .with_handler(FROM_CUSTOMERS, customer_reactions.clone())
        .with_handler(FROM_ORDERS, order_reactions.clone());
    let consumers = [
        Consumer::new(
            infra.jetstream.clone(),
            infra.pool.clone(),
            customer_reactions,
            ConsumerConfig::new(FROM_CUSTOMERS, customers, customer_filter)
                .only_event_types(&CustomerReactions::REACTS_TO),
        ),
        Consumer::new(
            infra.jetstream.clone(),
            infra.pool.clone(),
            order_reactions,
            ConsumerConfig::new(FROM_ORDERS, orders, order_filter)
                .only_event_types(&OrderReactions::REACTS_TO),
        ),
    ];
    (consumers, dead_letters)
}

/// The metadata of the commands an event causes: the same correlation id, and the
/// event as their cause. An event without a correlation id starts a chain itself.
fn context(envelope: &Envelope) -> CommandContext {
    CommandContext {
        correlation_id: envelope
            .correlation_id()
            .unwrap_or(&envelope.event_id)
            .to_owned(),
        causation_id: envelope.event_id.clone(),
        expected_version: None,
    }
}

/// Sorts out how a command ended: `Ok(true)` when it was applied (or had nothing to
/// do), `Ok(false)` when the aggregate refused it, which no retry would change, so
/// it is logged and the event is done with, and `Err` for a fault worth retrying
/// the batch for.
fn settle<E: std::error::Error + Send + Sync + 'static>(
    outcome: Result<i64, CommandError<E>>,
    command: &str,
) -> anyhow::Result<bool> {
    match outcome {
        Ok(_) => Ok(true),
        Err(CommandError::Rejected(rejection)) => {
            tracing::warn!(command, %rejection, "command refused; the event is skipped");
            Ok(false)
        }
        Err(error) => Err(anyhow::Error::new(error).context(format!("run {command}"))),
    }
}

/// A failed load, as a fault worth retrying the batch for.
fn load_failed<E: std::error::Error + Send + Sync + 'static>(
    error: CommandError<E>,
    aggregate: &str,
) -> anyhow::Error {
    anyhow::Error::new(error).context(format!("load {aggregate}"))
}

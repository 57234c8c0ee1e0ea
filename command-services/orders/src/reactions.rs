//! The order saga's reactions: inventory's and payments' answers become commands on
//! the orders they name.
//!
//! Each reaction runs inside a consumer batch, but the command it sends commits in
//! its own event-store transaction. A batch that rolls back after some of its
//! commands committed is redelivered, and the repeats change nothing, because the
//! `Order` aggregate ignores an answer it has already recorded.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use domain::inventory::ProductEvent;
use domain::orders::{CompensationStep, Order, OrderCommand, OrderError};
use domain::payments::PaymentEvent;
use domain::values::Sku;
use platform::consumer::Handler;
use platform::event_store::{AggregateStore, CommandContext, CommandError};
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records inventory's reservations and refusals on the orders they were made for.
pub struct InventoryReactions {
    orders: Arc<AggregateStore<Order>>,
}

impl InventoryReactions {
    /// The JetStream durable name; it also keys this consumer's checkpoints.
    pub const DURABLE_NAME: &'static str = "orders-from-inventory";

    /// The product events that concern orders; `docs/events.md` lists them.
    pub const REACTS_TO: [&'static str; 3] = [
        "StockReserved",
        "StockReservationRejected",
        "ReservationReleaseRefused",
    ];

    /// Reactions that send their commands to `orders`.
    pub fn new(orders: Arc<AggregateStore<Order>>) -> Self {
        Self { orders }
    }
}

#[async_trait]
impl Handler for InventoryReactions {
    fn name(&self) -> &str {
        Self::DURABLE_NAME
    }

    async fn apply(&self, _tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        // Only three product events concern orders; the others are not even decoded,
        // so a product event type added later cannot stall the saga.
        if !Self::REACTS_TO.contains(&envelope.event_type.as_str()) {
            return Ok(());
        }
        let Some((order_id, command)) = stock_command(envelope) else {
            return Ok(());
        };
        record(&self.orders, order_id, command, envelope).await
    }
}

/// The command a stock answer makes, and the order it is for. A malformed answer
/// is logged and skipped: no retry could ever make it readable, and waiting on
/// it would hold back every order behind it.
fn stock_command(envelope: &Envelope) -> Option<(Uuid, OrderCommand)> {
    let sku = Sku::parse(&envelope.aggregate_id);
    let event = envelope.decode::<ProductEvent>();
    let (sku, event) = match (sku, event) {
        (Ok(sku), Ok(event)) => (sku, event),
        (sku, event) => {
            tracing::error!(
                sku_error = sku.err().map(|e| e.to_string()),
                decode_error = event.err().map(|e| e.to_string()),
                "skipping a product event that cannot be read"
            );
            return None;
        }
    };
    match event {
        ProductEvent::StockReserved {
            order_id,
            quantity,
            unit_price_cents,
        } => Some((
            order_id,
            OrderCommand::RecordStockReserved {
                sku,
                quantity,
                unit_price_cents,
            },
        )),
        ProductEvent::StockReservationRejected {
            order_id, reason, ..
        } => Some((
            order_id,
            OrderCommand::RecordStockRejected {
                sku,
                reason: reason.into(),
            },
        )),
        ProductEvent::ReservationReleaseRefused {
            order_id, error, ..
        } => Some((
            order_id,
            OrderCommand::RecordCompensationFailed {
                step: CompensationStep::ReleaseStock,
                error,
            },
        )),
        _ => None,
    }
}

/// Records payments' authorizations and declines on the orders they were for.
pub struct PaymentReactions {
    orders: Arc<AggregateStore<Order>>,
}

impl PaymentReactions {
    /// The JetStream durable name; it also keys this consumer's checkpoints.
    pub const DURABLE_NAME: &'static str = "orders-from-payments";

    /// The payment events that concern orders; `docs/events.md` lists them.
    pub const REACTS_TO: [&'static str; 3] =
        ["PaymentAuthorized", "PaymentDeclined", "PaymentVoidRefused"];

    /// Reactions that send their commands to `orders`.
    pub fn new(orders: Arc<AggregateStore<Order>>) -> Self {
        Self { orders }
    }
}

#[async_trait]
impl Handler for PaymentReactions {
    fn name(&self) -> &str {
        Self::DURABLE_NAME
    }

    async fn apply(&self, _tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        // Voids and captures follow the order's own events and need no answer; a
        // refused void leaves the order needing an operator.
        if !Self::REACTS_TO.contains(&envelope.event_type.as_str()) {
            return Ok(());
        }
        let (order_id, command) = match envelope.decode::<PaymentEvent>() {
            Ok(PaymentEvent::PaymentAuthorized {
                order_id,
                amount_cents,
                ..
            }) => (
                order_id,
                OrderCommand::RecordPaymentAuthorized { amount_cents },
            ),
            Ok(PaymentEvent::PaymentDeclined {
                order_id, reason, ..
            }) => (
                order_id,
                OrderCommand::RecordPaymentDeclined {
                    reason: reason.into(),
                },
            ),
            Ok(PaymentEvent::PaymentVoidRefused { error, .. }) => {
                // The payment's id is its order's id.
                let Ok(order_id) = Uuid::parse_str(&envelope.aggregate_id) else {
                    tracing::error!(payment = %envelope.aggregate_id, "skipping a payment whose id is no order id");
                    return Ok(());
                };
                let step = CompensationStep::VoidPayment;
                (
                    order_id,
                    OrderCommand::RecordCompensationFailed { step, error },
                )
            }
            Ok(_) => return Ok(()),
            Err(error) => {
                // As for stock answers: unreadable for good, so skipped, not retried.
                tracing::error!(%error, "skipping a payment event that cannot be read");
                return Ok(());
            }
        };
        record(&self.orders, order_id, command, envelope).await
    }
}

/// Sends `command` to the order, caused by the event in `envelope`. A refusal is
/// final, so it is logged and skipped; only a technical failure is returned, which
/// rolls the batch back for a retry.
async fn record(
    orders: &AggregateStore<Order>,
    order_id: Uuid,
    command: OrderCommand,
    envelope: &Envelope,
) -> anyhow::Result<()> {
    let id = order_id.to_string();
    match orders.execute(&id, command, &caused_by(envelope)).await {
        Ok(version) => {
            tracing::debug!(order_id = %id, version, "saga answer recorded");
            Ok(())
        }
        Err(CommandError::Rejected(rejection)) => {
            refused(&id, &rejection);
            Ok(())
        }
        Err(error @ (CommandError::VersionMismatch { .. } | CommandError::Conflict)) => {
            Err(error).with_context(|| format!("record a saga answer on order {id}"))
        }
        Err(CommandError::Store(cause)) => {
            Err(cause.context(format!("record a saga answer on order {id}")))
        }
    }
}

/// Logs why an order refused a saga answer. None of these can succeed on a retry.
fn refused(order_id: &str, rejection: &OrderError) {
    match rejection {
        OrderError::NotFound => {
            tracing::warn!(
                order_id,
                "skipping an answer for an order that does not exist"
            );
        }
        // A saga input that contradicts the order: a fault upstream, to be
        // investigated, that must not hold back other orders.
        OrderError::QuantityMismatch { .. }
        | OrderError::NegativeUnitPrice { .. }
        | OrderError::TotalOverflow
        | OrderError::PaymentAmountMismatch { .. } => {
            tracing::warn!(order_id, %rejection, "skipping an answer the order contradicts");
        }
        // Only user commands are refused this way; a saga answer never is.
        OrderError::AlreadyPlaced
        | OrderError::CannotCancel { .. }
        | OrderError::CannotShip { .. } => {
            tracing::warn!(order_id, %rejection, "skipping an answer the order refused");
        }
    }
}

/// The context of a command caused by an event: the chain's correlation id (the
/// event's own id when it carries none), and the event as the cause.
fn caused_by(envelope: &Envelope) -> CommandContext {
    let correlation_id = envelope
        .correlation_id()
        .filter(|id| !id.is_empty())
        .unwrap_or(&envelope.event_id);
    CommandContext {
        correlation_id: correlation_id.to_owned(),
        causation_id: envelope.event_id.clone(),
        expected_version: None,
    }
}

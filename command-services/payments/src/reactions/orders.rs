//! Order events drive the order's payment: it is authorized or declined once the
//! order's total is known, voided when the order is cancelled and captured when
//! it ships.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::orders::OrderEvent;
use domain::payments::{
    CreditCommand, CreditDecision, CreditError, DeclineReason, Payment, PaymentCommand,
    PaymentStatus,
};
use domain::values::Money;
use platform::consumer::Handler;
use platform::event_store::{CommandContext, CommandError};
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{context, load_failed, settle, Stores};

/// Authorizes, declines, voids and captures order payments, holding and charging
/// the customer's credit to match.
pub struct OrderReactions {
    stores: Stores,
    unknown_customer_wait: Duration,
    started: DateTime<Utc>,
}

impl OrderReactions {
    /// The order events that move a payment; `docs/events.md` lists them.
    pub const REACTS_TO: [&'static str; 3] =
        ["OrderStockReserved", "OrderCancelled", "OrderShipped"];

    /// Reactions that write to `stores`, and decline an order whose customer is
    /// still unknown `unknown_customer_wait` after its total was recorded.
    pub fn new(stores: Stores, unknown_customer_wait: Duration) -> Self {
        Self {
            stores,
            unknown_customer_wait,
            started: Utc::now(),
        }
    }
}

#[async_trait]
impl Handler for OrderReactions {
    fn name(&self) -> &str {
        "order payments"
    }

    async fn apply(&self, _tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        // Other event types are passed over without decoding, so a new one in a
        // later version of the orders service does not stop the consumer.
        if !Self::REACTS_TO.contains(&envelope.event_type.as_str()) {
            return Ok(());
        }
        let event: OrderEvent = envelope
            .decode()
            .with_context(|| format!("decode {} as an order event", envelope.event_type))?;
        let order_id = Uuid::parse_str(&envelope.aggregate_id)
            .with_context(|| format!("order id {} is not a UUID", envelope.aggregate_id))?;
        let context = context(envelope);
        match event {
            OrderEvent::OrderStockReserved {
                customer_id,
                total_cents,
            } => {
                let amount = Money::from_cents(total_cents)
                    .with_context(|| format!("order total of {total_cents} cents"))?;
                let request = CreditRequest {
                    order_id,
                    customer_id,
                    amount,
                };
                self.decide_payment(request, envelope, &context).await
            }
            OrderEvent::OrderCancelled { .. } => self.void_payment(order_id, &context).await,
            OrderEvent::OrderShipped {} => self.capture_payment(order_id, &context).await,
            _ => Ok(()),
        }
    }
}

/// An order's request for credit: its total, charged to its customer.
#[derive(Debug, Clone, Copy)]
struct CreditRequest {
    order_id: Uuid,
    customer_id: Uuid,
    amount: Money,
}

impl CreditRequest {
    fn authorize(self, amount: Money) -> PaymentCommand {
        PaymentCommand::Authorize {
            order_id: self.order_id,
            customer_id: self.customer_id,
            amount,
        }
    }

    fn decline(self, amount: Money, reason: DeclineReason) -> PaymentCommand {
        PaymentCommand::Decline {
            order_id: self.order_id,
            customer_id: self.customer_id,
            amount,
            reason,
        }
    }
}

impl OrderReactions {
    /// Holds credit for the order's total and records the payment that follows:
    /// two commits, each idempotent, so a redelivery after a stop between them
    /// finds the credit decision and writes the payment.
    async fn decide_payment(
        &self,
        request: CreditRequest,
        envelope: &Envelope,
        context: &CommandContext,
    ) -> anyhow::Result<()> {
        let order = request.order_id.to_string();
        // The first decision stands. Looking before touching the credit also keeps a
        // redelivery from holding credit for an order already declined as
        // UNKNOWN_CUSTOMER whose customer has registered since.
        if self.load_payment(&order).await?.exists() {
            return Ok(());
        }
        let Some(command) = self.reserve_credit(request, envelope, context).await? else {
            return Ok(());
        };
        let outcome = self.stores.payments.execute(&order, command, context).await;
        settle(outcome, "a payment decision").map(drop)
    }

    /// Asks the customer's credit for the order's total, and returns the payment
    /// command that records the answer.
    async fn reserve_credit(
        &self,
        request: CreditRequest,
        envelope: &Envelope,
        context: &CommandContext,
    ) -> anyhow::Result<Option<PaymentCommand>> {
        let customer = request.customer_id.to_string();
        let reserve = CreditCommand::ReserveCredit {
            order_id: request.order_id,
            amount: request.amount,
        };
        // The decision is read from the credit as the command left it: loading it
        // again would read the customer's whole history, one event per order.
        let order_id = request.order_id;
        let decision = match self
            .stores
            .credits
            .execute_and_inspect(&customer, reserve, context, |credit| {
                credit.decision(order_id)
            })
            .await
        {
            Ok((_, decision)) => decision,
            Err(CommandError::Rejected(CreditError::UnknownCustomer)) => {
                self.stop_waiting_for_customer(request, envelope)?;
                let reason = DeclineReason::UnknownCustomer;
                return Ok(Some(request.decline(request.amount, reason)));
            }
            Err(error) => return settle(Err(error), "a credit reservation").map(|_| None),
        };
        match decision {
            Some(CreditDecision::Reserved { amount }) => Ok(Some(request.authorize(amount))),
            Some(CreditDecision::Declined { amount, reason }) => {
                Ok(Some(request.decline(amount, reason)))
            }
            // Held credit is released or charged only for an authorized payment, which
            // then exists already; nothing is left to record.
            Some(decision) => {
                tracing::warn!(?decision, "credit settled before its payment; skipped");
                Ok(None)
            }
            None => anyhow::bail!("no credit decision for order {}", request.order_id),
        }
    }

    /// Whether to give up on a customer that payments has not heard of: `Ok` once
    /// the wait is over, and until then an error, which rolls the consumer's batch
    /// back to be retried after a growing delay (100 ms, doubling). Sleeping here
    /// instead would hold the batch transaction, which already has a transaction id
    /// (it locked the order's offset row): while it is open, no relay on the
    /// PostgreSQL cluster publishes anything committed after it, the customer's
    /// registration included.
    fn stop_waiting_for_customer(
        &self,
        request: CreditRequest,
        envelope: &Envelope,
    ) -> anyhow::Result<()> {
        // After a restart the customers' consumer needs time to catch up too, so the
        // wait starts no earlier than this process.
        let since = envelope.recorded_at.max(self.started);
        let waited = (Utc::now() - since).to_std().unwrap_or(Duration::ZERO);
        let (customer_id, order_id) = (request.customer_id, request.order_id);
        if waited >= self.unknown_customer_wait {
            let waited_ms = waited.as_millis() as u64;
            tracing::warn!(%customer_id, %order_id, waited_ms, "customer still unknown; declining");
            return Ok(());
        }
        anyhow::bail!("customer {customer_id} of order {order_id} is not known yet; retrying")
    }

    /// Gives an authorized payment's credit back and voids it. A captured payment
    /// cannot be voided: the payment records the refusal, which the order shows.
    /// Any other payment holds no credit, so there is nothing to undo.
    async fn void_payment(&self, order_id: Uuid, context: &CommandContext) -> anyhow::Result<()> {
        let order = order_id.to_string();
        let payment = self.load_payment(&order).await?;
        if payment.status() == Some(PaymentStatus::Captured) {
            let refused = self
                .stores
                .payments
                .execute(&order, PaymentCommand::Void, context)
                .await;
            return settle(refused, "a payment void").map(drop);
        }
        if payment.status() != Some(PaymentStatus::Authorized) {
            return Ok(());
        }
        let customer = customer_of(&payment, &order)?;
        // Credit first: if the process stops in between, the redelivery still finds
        // the payment authorized and finishes both.
        let release = CreditCommand::ReleaseCredit { order_id };
        let released = self
            .stores
            .credits
            .execute(&customer, release, context)
            .await;
        if settle(released, "a credit release")? {
            let voided = self
                .stores
                .payments
                .execute(&order, PaymentCommand::Void, context)
                .await;
            settle(voided, "a payment void")?;
        }
        Ok(())
    }

    /// Charges an authorized payment's credit and captures it.
    async fn capture_payment(
        &self,
        order_id: Uuid,
        context: &CommandContext,
    ) -> anyhow::Result<()> {
        let order = order_id.to_string();
        let payment = self.load_payment(&order).await?;
        let status = payment.status();
        if !matches!(
            status,
            Some(PaymentStatus::Authorized | PaymentStatus::Captured)
        ) {
            tracing::warn!(
                ?status,
                "a shipped order has no authorized payment; skipped"
            );
            return Ok(());
        }
        let customer = customer_of(&payment, &order)?;
        // Credit first, for the same reason as in `void_payment`.
        let capture = CreditCommand::CaptureCredit { order_id };
        let charged = self
            .stores
            .credits
            .execute(&customer, capture, context)
            .await;
        if settle(charged, "a credit capture")? {
            let captured = self
                .stores
                .payments
                .execute(&order, PaymentCommand::Capture, context)
                .await;
            settle(captured, "a payment capture")?;
        }
        Ok(())
    }

    async fn load_payment(&self, order: &str) -> anyhow::Result<Payment> {
        let (payment, _) = self
            .stores
            .payments
            .load(order)
            .await
            .map_err(|error| load_failed(error, "the payment"))?;
        Ok(payment)
    }
}

/// The credit account a decided payment draws on.
fn customer_of(payment: &Payment, order: &str) -> anyhow::Result<String> {
    // A decided payment always records its customer; a missing one is a bug to see.
    payment
        .customer_id()
        .map(|id| id.to_string())
        .with_context(|| format!("the payment of order {order} names no customer"))
}

//! The payment aggregate: its state, the decisions in `handle` and how events change it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PaymentCommand, PaymentError, PaymentEvent};
use crate::payments::DeclineReason;
use crate::values::Money;

/// One order's payment: whether its total was authorized and what became of it. The
/// aggregate id is the order id as a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    order_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    amount: Money,
    status: Option<PaymentStatus>,
    reason: Option<DeclineReason>,
    /// Whether a void was refused, so the refusal is recorded once.
    #[serde(default)]
    void_refused: bool,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// The customer's credit holds the amount.
    Authorized,
    /// The amount was refused. Final.
    Declined,
    /// The authorization was cancelled with the order. Final.
    Voided,
    /// The amount was charged. Final.
    Captured,
}

impl Payment {
    /// Whether the payment was authorized or declined.
    pub fn exists(&self) -> bool {
        self.status.is_some()
    }

    /// The order paid for, or `None` before a decision.
    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }

    /// The customer who pays, or `None` before a decision.
    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    /// The order's total, authorized or refused.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// Where the payment stands, or `None` before a decision.
    pub fn status(&self) -> Option<PaymentStatus> {
        self.status
    }

    /// Why the payment was declined, if it was.
    pub fn reason(&self) -> Option<DeclineReason> {
        self.reason
    }

    /// Decides what a command records, without changing the state.
    fn decide(&self, command: PaymentCommand) -> Result<Option<PaymentEvent>, PaymentError> {
        // The first decision stands; a redelivered answer must not overturn it.
        match (command, self.status) {
            (
                PaymentCommand::Authorize {
                    order_id,
                    customer_id,
                    amount,
                },
                None,
            ) => Ok(Some(PaymentEvent::PaymentAuthorized {
                order_id,
                customer_id,
                amount_cents: amount.cents(),
            })),
            (
                PaymentCommand::Decline {
                    order_id,
                    customer_id,
                    amount,
                    reason,
                },
                None,
            ) => Ok(Some(PaymentEvent::PaymentDeclined {
                order_id,
                customer_id,
                amount_cents: amount.cents(),
                reason,
            })),
            (PaymentCommand::Authorize { .. } | PaymentCommand::Decline { .. }, Some(_)) => {
                Ok(None)
            }
            (PaymentCommand::Void | PaymentCommand::Capture, None) => Err(PaymentError::NotFound),
            (PaymentCommand::Void, Some(PaymentStatus::Authorized)) => {
                Ok(Some(PaymentEvent::PaymentVoided {
                    amount_cents: self.amount.cents(),
                }))
            }
            // A captured payment cannot be voided; the saga must hear that, once.
            (PaymentCommand::Void, Some(PaymentStatus::Captured)) if !self.void_refused => {
                Ok(Some(PaymentEvent::PaymentVoidRefused {
                    amount_cents: self.amount.cents(),
                    error: format!(
                        "the payment of {} cents was already captured and cannot be voided",
                        self.amount.cents()
                    ),
                }))
            }
            (PaymentCommand::Void, Some(_)) => Ok(None),
            (PaymentCommand::Capture, Some(PaymentStatus::Authorized)) => {
                Ok(Some(PaymentEvent::PaymentCaptured {
                    amount_cents: self.amount.cents(),
                }))
            }
            (PaymentCommand::Capture, Some(PaymentStatus::Captured)) => Ok(None),
            (PaymentCommand::Capture, Some(_)) => Err(PaymentError::NotAuthorized),
        }
    }

    fn record_decision(
        &mut self,
        order_id: Uuid,
        customer_id: Uuid,
        amount_cents: i64,
        status: PaymentStatus,
    ) {
        self.order_id = Some(order_id);
        self.customer_id = Some(customer_id);
        // Amounts are recorded only from a valid `Money`, so a negative one cannot come
        // from `handle`; reading it as zero beats a panic while replaying.
        self.amount = Money::from_cents(amount_cents).unwrap_or(Money::ZERO);
        self.status = Some(status);
    }
}

impl Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PaymentEvent::PaymentAuthorized {
                order_id,
                customer_id,
                amount_cents,
            } => self.record_decision(
                order_id,
                customer_id,
                amount_cents,
                PaymentStatus::Authorized,
            ),
            PaymentEvent::PaymentDeclined {
                order_id,
                customer_id,
                amount_cents,
                reason,
            } => {
                self.record_decision(order_id, customer_id, amount_cents, PaymentStatus::Declined);
                self.reason = Some(reason);
            }
            PaymentEvent::PaymentVoided { .. } => self.status = Some(PaymentStatus::Voided),
            PaymentEvent::PaymentCaptured { .. } => self.status = Some(PaymentStatus::Captured),
            PaymentEvent::PaymentVoidRefused { .. } => self.void_refused = true,
        }
    }
}

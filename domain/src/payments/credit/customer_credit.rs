//! The customer credit aggregate: its state, the decisions in `handle` and how events
//! change it.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CreditCommand, CreditDecision, CreditError, CreditEvent};
use crate::payments::DeclineReason;
use crate::values::Money;

/// One customer's credit as payments knows it, rebuilt from its events. The aggregate
/// id is the customer id as a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerCredit {
    customer_id: Option<Uuid>,
    credit_limit: Money,
    suspended: bool,
    customer_sequence: i64,
    reserved: Money,
    captured: Money,
    decisions: BTreeMap<Uuid, CreditDecision>,
}

impl CustomerCredit {
    /// Whether payments has learned of the customer.
    pub fn is_open(&self) -> bool {
        self.customer_id.is_some()
    }

    /// The customer's id, or `None` before the account is open.
    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    /// The customer's credit limit as last learned.
    pub fn credit_limit(&self) -> Money {
        self.credit_limit
    }

    /// Whether the customer was deactivated, so new requests for credit are declined.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// The sequence of the last customer event applied; older ones are ignored.
    pub fn customer_sequence(&self) -> i64 {
        self.customer_sequence
    }

    /// Credit held for orders that are neither released nor charged.
    pub fn reserved(&self) -> Money {
        self.reserved
    }

    /// Credit charged for shipped orders.
    pub fn captured(&self) -> Money {
        self.captured
    }

    /// Credit a new order may still use: the limit minus what is reserved and captured,
    /// or zero when a lowered limit is already exceeded.
    pub fn available(&self) -> Money {
        let left = self
            .credit_limit
            .cents()
            .saturating_sub(self.reserved.cents())
            .saturating_sub(self.captured.cents());
        Money::from_cents(left).unwrap_or(Money::ZERO)
    }

    /// The decision taken for `order_id`, if it asked for credit.
    pub fn decision(&self, order_id: Uuid) -> Option<CreditDecision> {
        self.decisions.get(&order_id).copied()
    }

    /// Decides what a command records, without changing the state.
    fn decide(&self, command: CreditCommand) -> Result<Option<CreditEvent>, CreditError> {
        match command {
            CreditCommand::OpenAccount {
                customer_id,
                credit_limit,
                customer_sequence,
            } => Ok(self.open_account(customer_id, credit_limit, customer_sequence)),
            CreditCommand::ReleaseCredit { order_id } => Ok(self.release_credit(order_id)),
            CreditCommand::CaptureCredit { order_id } => self.capture_credit(order_id),
            _ if !self.is_open() => Err(CreditError::UnknownCustomer),
            CreditCommand::UpdateLimit {
                credit_limit,
                customer_sequence,
            } => Ok(self.update_limit(credit_limit, customer_sequence)),
            CreditCommand::Suspend { customer_sequence } => Ok(self.suspend(customer_sequence)),
            CreditCommand::ReserveCredit { order_id, amount } => {
                Ok(self.reserve_credit(order_id, amount))
            }
        }
    }

    fn open_account(
        &self,
        customer_id: Uuid,
        credit_limit: Money,
        customer_sequence: i64,
    ) -> Option<CreditEvent> {
        if self.is_open() || self.is_stale(customer_sequence) {
            return None;
        }
        Some(CreditEvent::CreditAccountOpened {
            customer_id,
            credit_limit_cents: credit_limit.cents(),
            customer_sequence,
        })
    }

    fn update_limit(&self, credit_limit: Money, customer_sequence: i64) -> Option<CreditEvent> {
        if self.is_stale(customer_sequence) || credit_limit == self.credit_limit {
            return None;
        }
        Some(CreditEvent::CreditLimitUpdated {
            credit_limit_cents: credit_limit.cents(),
            customer_sequence,
        })
    }

    fn suspend(&self, customer_sequence: i64) -> Option<CreditEvent> {
        if self.is_stale(customer_sequence) || self.suspended {
            return None;
        }
        Some(CreditEvent::CreditAccountSuspended { customer_sequence })
    }

    /// Whether a customer event at `customer_sequence` was already applied.
    fn is_stale(&self, customer_sequence: i64) -> bool {
        customer_sequence <= self.customer_sequence
    }

    fn reserve_credit(&self, order_id: Uuid, amount: Money) -> Option<CreditEvent> {
        // The saga may redeliver; the payment already follows the first decision.
        if self.decisions.contains_key(&order_id) {
            return None;
        }
        let declined = |reason| CreditEvent::CreditDeclined {
            order_id,
            amount_cents: amount.cents(),
            reason,
        };
        if self.suspended {
            return Some(declined(DeclineReason::CustomerInactive));
        }
        if amount > self.available() {
            return Some(declined(DeclineReason::InsufficientCredit));
        }
        Some(CreditEvent::CreditReserved {
            order_id,
            amount_cents: amount.cents(),
        })
    }

    fn release_credit(&self, order_id: Uuid) -> Option<CreditEvent> {
        // Only held credit can be given back; every other case has nothing left to undo.
        match self.decision(order_id)? {
            CreditDecision::Reserved { amount } => Some(CreditEvent::CreditReleased {
                order_id,
                amount_cents: amount.cents(),
            }),
            _ => None,
        }
    }

    fn capture_credit(&self, order_id: Uuid) -> Result<Option<CreditEvent>, CreditError> {
        match self.decision(order_id) {
            Some(CreditDecision::Reserved { amount }) => Ok(Some(CreditEvent::CreditCaptured {
                order_id,
                amount_cents: amount.cents(),
            })),
            Some(CreditDecision::Captured { .. }) => Ok(None),
            _ => Err(CreditError::NothingToCapture),
        }
    }

    fn record_sequence(&mut self, customer_sequence: i64) {
        self.customer_sequence = self.customer_sequence.max(customer_sequence);
    }
}

// Amounts are recorded only from a valid `Money`, so a negative one cannot come from
// `handle`; reading it as zero beats a panic while replaying.
fn money(cents: i64) -> Money {
    Money::from_cents(cents).unwrap_or(Money::ZERO)
}

fn plus(total: Money, amount: Money) -> Money {
    money(total.cents().saturating_add(amount.cents()))
}

fn minus(total: Money, amount: Money) -> Money {
    money(total.cents().saturating_sub(amount.cents()))
}

impl Aggregate for CustomerCredit {
    const TYPE: &'static str = "CustomerCredit";
    type Command = CreditCommand;
    type Event = CreditEvent;
    type Error = CreditError;
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

    // Saturating arithmetic keeps replay total: `handle` never records an event that
    // would overflow or underflow, so it only matters for a store edited by hand.
    fn apply(&mut self, event: Self::Event) {
        match event {
            CreditEvent::CreditAccountOpened {
                customer_id,
                credit_limit_cents,
                customer_sequence,
            } => {
                self.customer_id = Some(customer_id);
                self.credit_limit = money(credit_limit_cents);
                self.record_sequence(customer_sequence);
            }
            CreditEvent::CreditLimitUpdated {
                credit_limit_cents,
                customer_sequence,
            } => {
                self.credit_limit = money(credit_limit_cents);
                self.record_sequence(customer_sequence);
            }
            CreditEvent::CreditAccountSuspended { customer_sequence } => {
                self.suspended = true;
                self.record_sequence(customer_sequence);
            }
            CreditEvent::CreditReserved {
                order_id,
                amount_cents,
            } => {
                let amount = money(amount_cents);
                self.reserved = plus(self.reserved, amount);
                self.decisions
                    .insert(order_id, CreditDecision::Reserved { amount });
            }
            CreditEvent::CreditDeclined {
                order_id,
                amount_cents,
                reason,
            } => {
                let amount = money(amount_cents);
                self.decisions
                    .insert(order_id, CreditDecision::Declined { amount, reason });
            }
            CreditEvent::CreditReleased {
                order_id,
                amount_cents,
            } => {
                let amount = money(amount_cents);
                self.reserved = minus(self.reserved, amount);
                self.decisions
                    .insert(order_id, CreditDecision::Released { amount });
            }
            CreditEvent::CreditCaptured {
                order_id,
                amount_cents,
            } => {
                let amount = money(amount_cents);
                self.reserved = minus(self.reserved, amount);
                self.captured = plus(self.captured, amount);
                self.decisions
                    .insert(order_id, CreditDecision::Captured { amount });
            }
        }
    }
}

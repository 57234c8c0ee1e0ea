//! Facts recorded about an order's payment. Other services read this JSON, so field
//! names and variant names are a contract.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::payments::DeclineReason;
use crate::versioning::{SchemaChange, VersionedEvent};

/// Something that happened to an order's payment, stored as `{"VariantName": {fields}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum PaymentEvent {
    /// The customer's credit covers the order's total; the order may be confirmed.
    PaymentAuthorized {
        /// The order paid for, also the aggregate id.
        order_id: Uuid,
        /// The customer who pays.
        customer_id: Uuid,
        /// The amount authorized, in cents.
        amount_cents: i64,
    },
    /// The order's total was refused; the order is rejected.
    PaymentDeclined {
        /// The order paid for, also the aggregate id.
        order_id: Uuid,
        /// The customer who was to pay.
        customer_id: Uuid,
        /// The amount refused, in cents.
        amount_cents: i64,
        /// Why it was refused.
        reason: DeclineReason,
    },
    /// The authorization was cancelled with the order.
    PaymentVoided {
        /// The amount no longer authorized, in cents.
        amount_cents: i64,
    },
    /// The authorized amount was charged when the order shipped.
    PaymentCaptured {
        /// The amount charged, in cents.
        amount_cents: i64,
    },
    /// The order was cancelled, but the payment was already captured, so it cannot
    /// be voided; the order saga shows that an operator is needed.
    PaymentVoidRefused {
        /// The amount that stays charged, in cents.
        amount_cents: i64,
        /// Why, fit to show an operator.
        error: String,
    },
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        let name = match self {
            PaymentEvent::PaymentAuthorized { .. } => "PaymentAuthorized",
            PaymentEvent::PaymentDeclined { .. } => "PaymentDeclined",
            PaymentEvent::PaymentVoided { .. } => "PaymentVoided",
            PaymentEvent::PaymentCaptured { .. } => "PaymentCaptured",
            PaymentEvent::PaymentVoidRefused { .. } => "PaymentVoidRefused",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        Self::current_version(&self.event_type()).to_owned()
    }
}

/// No payment event has changed its schema yet: every one is at version 1.0.
impl VersionedEvent for PaymentEvent {
    const SCHEMA_CHANGES: &'static [SchemaChange] = &[];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ORDER: Uuid = Uuid::from_u128(1);
    const CUSTOMER: Uuid = Uuid::from_u128(2);

    #[test]
    fn a_decline_serializes_externally_tagged_with_its_reason_in_capitals() {
        let event = PaymentEvent::PaymentDeclined {
            order_id: ORDER,
            customer_id: CUSTOMER,
            amount_cents: 9_000,
            reason: DeclineReason::CustomerInactive,
        };
        let expected = json!({"PaymentDeclined": {
            "order_id": ORDER.to_string(),
            "customer_id": CUSTOMER.to_string(),
            "amount_cents": 9_000,
            "reason": "CUSTOMER_INACTIVE",
        }});
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<PaymentEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn every_event_type_is_its_json_tag_at_version_one() {
        let events = [
            PaymentEvent::PaymentAuthorized {
                order_id: ORDER,
                customer_id: CUSTOMER,
                amount_cents: 1,
            },
            PaymentEvent::PaymentDeclined {
                order_id: ORDER,
                customer_id: CUSTOMER,
                amount_cents: 1,
                reason: DeclineReason::UnknownCustomer,
            },
            PaymentEvent::PaymentVoided { amount_cents: 1 },
            PaymentEvent::PaymentCaptured { amount_cents: 1 },
            PaymentEvent::PaymentVoidRefused {
                amount_cents: 1,
                error: "already captured".into(),
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert!(json.get(event.event_type()).is_some(), "{json}");
            assert_eq!(event.event_version(), "1.0");
        }
    }
}

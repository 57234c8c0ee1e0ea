//! Facts recorded about a customer's credit. Other services read this JSON, so field
//! names and variant names are a contract.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::payments::DeclineReason;
use crate::versioning::{SchemaChange, VersionedEvent};

/// Something that happened to a customer's credit, stored as `{"VariantName": {fields}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum CreditEvent {
    /// Payments learned of a registered customer.
    CreditAccountOpened {
        /// The customer's id, also the aggregate id.
        customer_id: Uuid,
        /// The credit limit in cents.
        credit_limit_cents: i64,
        /// The sequence of the customer event it came from.
        customer_sequence: i64,
    },
    /// The customer's credit limit changed.
    CreditLimitUpdated {
        /// The new credit limit in cents.
        credit_limit_cents: i64,
        /// The sequence of the customer event it came from.
        customer_sequence: i64,
    },
    /// The customer was deactivated; later requests for credit are declined.
    CreditAccountSuspended {
        /// The sequence of the customer event it came from.
        customer_sequence: i64,
    },
    /// Credit is held for an order.
    CreditReserved {
        /// The order the credit is held for.
        order_id: Uuid,
        /// The amount held, in cents.
        amount_cents: i64,
    },
    /// Credit for an order was refused.
    CreditDeclined {
        /// The order that asked.
        order_id: Uuid,
        /// The amount asked for, in cents.
        amount_cents: i64,
        /// Why it was refused.
        reason: DeclineReason,
    },
    /// An order's held credit was given back.
    CreditReleased {
        /// The order whose credit was given back.
        order_id: Uuid,
        /// The amount given back, in cents.
        amount_cents: i64,
    },
    /// An order's held credit was charged.
    CreditCaptured {
        /// The order charged.
        order_id: Uuid,
        /// The amount charged, in cents.
        amount_cents: i64,
    },
}

impl DomainEvent for CreditEvent {
    fn event_type(&self) -> String {
        let name = match self {
            CreditEvent::CreditAccountOpened { .. } => "CreditAccountOpened",
            CreditEvent::CreditLimitUpdated { .. } => "CreditLimitUpdated",
            CreditEvent::CreditAccountSuspended { .. } => "CreditAccountSuspended",
            CreditEvent::CreditReserved { .. } => "CreditReserved",
            CreditEvent::CreditDeclined { .. } => "CreditDeclined",
            CreditEvent::CreditReleased { .. } => "CreditReleased",
            CreditEvent::CreditCaptured { .. } => "CreditCaptured",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        Self::current_version(&self.event_type()).to_owned()
    }
}

/// No credit event has changed its schema yet: every one is at version 1.0.
impl VersionedEvent for CreditEvent {
    const SCHEMA_CHANGES: &'static [SchemaChange] = &[];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ORDER: Uuid = Uuid::from_u128(2);

    #[test]
    fn a_decline_serializes_externally_tagged_with_its_reason_in_capitals() {
        let event = CreditEvent::CreditDeclined {
            order_id: ORDER,
            amount_cents: 5_000,
            reason: DeclineReason::InsufficientCredit,
        };
        let expected = json!({"CreditDeclined": {
            "order_id": ORDER.to_string(),
            "amount_cents": 5_000,
            "reason": "INSUFFICIENT_CREDIT",
        }});
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<CreditEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn every_event_type_is_its_json_tag_at_version_one() {
        let events = [
            CreditEvent::CreditAccountOpened {
                customer_id: Uuid::from_u128(1),
                credit_limit_cents: 1,
                customer_sequence: 1,
            },
            CreditEvent::CreditLimitUpdated {
                credit_limit_cents: 1,
                customer_sequence: 2,
            },
            CreditEvent::CreditAccountSuspended {
                customer_sequence: 3,
            },
            CreditEvent::CreditReserved {
                order_id: ORDER,
                amount_cents: 1,
            },
            CreditEvent::CreditDeclined {
                order_id: ORDER,
                amount_cents: 1,
                reason: DeclineReason::CustomerInactive,
            },
            CreditEvent::CreditReleased {
                order_id: ORDER,
                amount_cents: 1,
            },
            CreditEvent::CreditCaptured {
                order_id: ORDER,
                amount_cents: 1,
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert!(json.get(event.event_type()).is_some(), "{json}");
            assert_eq!(event.event_version(), "1.0");
        }
    }
}

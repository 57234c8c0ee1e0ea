//! Facts recorded about a customer. Other services read this JSON, so field names and
//! variant names are a contract.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::versioning::{SchemaChange, VersionedEvent};

/// Something that happened to a customer, stored as `{"VariantName": {fields}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum CustomerEvent {
    /// The customer was registered and may place orders.
    CustomerRegistered {
        /// The customer's id, also the aggregate id.
        customer_id: Uuid,
        /// How to address the customer.
        name: String,
        /// The normalized email address.
        email: String,
        /// The credit limit in cents.
        credit_limit_cents: i64,
    },
    /// The credit limit changed.
    CreditLimitChanged {
        /// The new credit limit in cents.
        credit_limit_cents: i64,
    },
    /// The customer may no longer place orders. It has no fields, so its payload is `{}`.
    CustomerDeactivated {},
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        let name = match self {
            CustomerEvent::CustomerRegistered { .. } => "CustomerRegistered",
            CustomerEvent::CreditLimitChanged { .. } => "CreditLimitChanged",
            CustomerEvent::CustomerDeactivated {} => "CustomerDeactivated",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        Self::current_version(&self.event_type()).to_owned()
    }
}

/// No customer event has changed its schema yet: every one is at version 1.0.
impl VersionedEvent for CustomerEvent {
    const SCHEMA_CHANGES: &'static [SchemaChange] = &[];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_registration_serializes_externally_tagged_with_its_field_names() {
        let customer_id = Uuid::from_u128(7);
        let event = CustomerEvent::CustomerRegistered {
            customer_id,
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            credit_limit_cents: 50_000,
        };
        let expected = json!({"CustomerRegistered": {
            "customer_id": customer_id.to_string(),
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "credit_limit_cents": 50_000,
        }});
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<CustomerEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn a_deactivation_has_an_empty_object_as_payload() {
        let event = CustomerEvent::CustomerDeactivated {};
        let expected = json!({"CustomerDeactivated": {}});
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<CustomerEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn every_event_type_is_its_json_tag_at_version_one() {
        let events = [
            CustomerEvent::CustomerRegistered {
                customer_id: Uuid::from_u128(7),
                name: "Ada".into(),
                email: "ada@example.com".into(),
                credit_limit_cents: 1,
            },
            CustomerEvent::CreditLimitChanged {
                credit_limit_cents: 1,
            },
            CustomerEvent::CustomerDeactivated {},
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert!(json.get(event.event_type()).is_some(), "{json}");
            assert_eq!(event.event_version(), "1.0");
        }
    }
}

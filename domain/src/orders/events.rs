//! Facts recorded about an order. Other services read this JSON, so field names and
//! variant names are a contract.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{CompensationStep, OrderRejectionReason, OrderStatus};
use crate::versioning::VersionedEvent;

/// Something that happened to an order, stored as `{"VariantName": {fields}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum OrderEvent {
    /// The customer placed the order; inventory reserves its lines next.
    OrderPlaced {
        /// The order's id, also the aggregate id.
        order_id: Uuid,
        /// The customer who ordered.
        customer_id: Uuid,
        /// What was ordered, in the customer's order.
        lines: Vec<PlacedLine>,
    },
    /// Inventory held one line's units at a unit price.
    OrderLineReserved {
        /// The line's SKU.
        sku: String,
        /// Units held.
        quantity: u64,
        /// The unit price when reserved, in cents.
        unit_price_cents: i64,
    },
    /// Every line is held, so the total is known; payments authorizes it next. Recorded
    /// together with the last `OrderLineReserved`.
    OrderStockReserved {
        /// The customer to charge.
        customer_id: Uuid,
        /// The sum of quantity times unit price over all lines, in cents.
        total_cents: i64,
    },
    /// Stock or payment was refused. Final.
    OrderRejected {
        /// Why.
        reason: OrderRejectionReason,
    },
    /// Stock is held and payment authorized.
    OrderConfirmed {
        /// The total authorized, in cents.
        total_cents: i64,
    },
    /// The customer withdrew the order. Final.
    OrderCancelled {
        /// The customer's words, if any.
        reason: Option<String>,
        /// The status it was cancelled from: PENDING or CONFIRMED. Named `was` before
        /// version 2.0.
        cancelled_from: OrderStatus,
    },
    /// The order left the warehouse. Final. It has no fields, so its payload is `{}`.
    OrderShipped {},
    /// Another service refused to undo its part of the order (a compensation), so
    /// the order needs an operator. Recorded once per step and error.
    CompensationFailed {
        /// The step that could not be applied.
        step: CompensationStep,
        /// What the refusing service said, fit to show an operator.
        error: String,
    },
}

/// One line as it was ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlacedLine {
    /// The product's SKU.
    pub sku: String,
    /// Units ordered.
    pub quantity: u64,
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        let name = match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::OrderLineReserved { .. } => "OrderLineReserved",
            OrderEvent::OrderStockReserved { .. } => "OrderStockReserved",
            OrderEvent::OrderRejected { .. } => "OrderRejected",
            OrderEvent::OrderConfirmed { .. } => "OrderConfirmed",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderShipped {} => "OrderShipped",
            OrderEvent::CompensationFailed { .. } => "CompensationFailed",
        };
        name.to_owned()
    }

    /// The version of the event type's last schema change; see `versions.rs`.
    fn event_version(&self) -> String {
        Self::current_version(&self.event_type()).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_order_placed_event_serializes_externally_tagged_with_its_lines() {
        let (order_id, customer_id) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let event = OrderEvent::OrderPlaced {
            order_id,
            customer_id,
            lines: vec![PlacedLine {
                sku: "MUG-1".into(),
                quantity: 2,
            }],
        };
        let expected = json!({"OrderPlaced": {
            "order_id": order_id.to_string(),
            "customer_id": customer_id.to_string(),
            "lines": [{"sku": "MUG-1", "quantity": 2}],
        }});
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<OrderEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn reasons_and_statuses_in_events_are_capitalized_words() {
        let rejected = OrderEvent::OrderRejected {
            reason: OrderRejectionReason::InsufficientCredit,
        };
        assert_eq!(
            serde_json::to_value(&rejected).unwrap(),
            json!({"OrderRejected": {"reason": "INSUFFICIENT_CREDIT"}})
        );
        let cancelled = OrderEvent::OrderCancelled {
            reason: None,
            cancelled_from: OrderStatus::Confirmed,
        };
        assert_eq!(
            serde_json::to_value(&cancelled).unwrap(),
            json!({"OrderCancelled": {"reason": null, "cancelled_from": "CONFIRMED"}})
        );
    }

    #[test]
    fn a_shipment_has_an_empty_object_as_payload() {
        let expected = json!({"OrderShipped": {}});
        assert_eq!(
            serde_json::to_value(OrderEvent::OrderShipped {}).unwrap(),
            expected
        );
        assert_eq!(
            serde_json::from_value::<OrderEvent>(expected).unwrap(),
            OrderEvent::OrderShipped {}
        );
    }

    #[test]
    fn every_event_type_is_its_json_tag_at_its_current_version() {
        let events = [
            OrderEvent::OrderPlaced {
                order_id: Uuid::from_u128(1),
                customer_id: Uuid::from_u128(2),
                lines: vec![],
            },
            OrderEvent::OrderLineReserved {
                sku: "MUG-1".into(),
                quantity: 1,
                unit_price_cents: 1,
            },
            OrderEvent::OrderStockReserved {
                customer_id: Uuid::from_u128(2),
                total_cents: 1,
            },
            OrderEvent::OrderRejected {
                reason: OrderRejectionReason::OutOfStock,
            },
            OrderEvent::OrderConfirmed { total_cents: 1 },
            OrderEvent::OrderCancelled {
                reason: Some("changed my mind".into()),
                cancelled_from: OrderStatus::Pending,
            },
            OrderEvent::OrderShipped {},
            OrderEvent::CompensationFailed {
                step: CompensationStep::VoidPayment,
                error: "already captured".into(),
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert!(json.get(event.event_type()).is_some(), "{json}");
            let expected = match event {
                OrderEvent::OrderCancelled { .. } => "2.0",
                _ => "1.0",
            };
            assert_eq!(event.event_version(), expected);
        }
    }
}

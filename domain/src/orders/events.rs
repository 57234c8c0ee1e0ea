//! Facts recorded about an order. Other services read this JSON, so field names and
//! variant names are a contract.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OrderRejectionReason, OrderStatus};

/// Something that happened to an order, stored as `{"VariantName": {fields}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        /// The status it was cancelled from: PENDING or CONFIRMED.
        was: OrderStatus,
    },
    /// The order left the warehouse. Final. It has no fields, so its payload is `{}`.
    OrderShipped {},
}

/// One line as it was ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
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
            was: OrderStatus::Confirmed,
        };
        assert_eq!(
            serde_json::to_value(&cancelled).unwrap(),
            json!({"OrderCancelled": {"reason": null, "was": "CONFIRMED"}})
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
    fn every_event_type_is_its_json_tag_at_version_one() {
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
                was: OrderStatus::Pending,
            },
            OrderEvent::OrderShipped {},
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert!(json.get(event.event_type()).is_some(), "{json}");
            assert_eq!(event.event_version(), "1.0");
        }
    }
}

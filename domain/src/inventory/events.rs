//! Facts recorded about a product. Other services read this JSON, so field names and
//! variant names are a contract.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::versioning::{SchemaChange, VersionedEvent};

/// Something that happened to a product, stored as `{"VariantName": {fields}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ProductEvent {
    /// The product was created.
    ProductAdded {
        /// The SKU, also the aggregate id.
        sku: String,
        /// The display name.
        name: String,
        /// The unit price in cents.
        price_cents: i64,
        /// Units on hand from the start.
        initial_stock: u64,
    },
    /// Units were added to the stock on hand.
    Restocked {
        /// Units received.
        quantity: u64,
    },
    /// The unit price changed.
    PriceChanged {
        /// The new unit price in cents.
        price_cents: i64,
    },
    /// Units are held for an order at the price of the moment.
    StockReserved {
        /// The order the units are held for.
        order_id: Uuid,
        /// Units held.
        quantity: u64,
        /// The unit price when reserved, which the order charges.
        unit_price_cents: i64,
    },
    /// Units could not be held for an order; the saga reacts to this.
    StockReservationRejected {
        /// The order that asked.
        order_id: Uuid,
        /// Units asked for.
        quantity: u64,
        /// Units that were available at the time.
        available: u64,
        /// Why the reservation was refused.
        reason: RejectionReason,
    },
    /// An order's held units went back to the available stock.
    ReservationReleased {
        /// The order whose reservation ended.
        order_id: Uuid,
        /// Units given back.
        quantity: u64,
    },
    /// An order's held units were shipped and left the stock.
    ReservationCommitted {
        /// The order whose reservation was fulfilled.
        order_id: Uuid,
        /// Units that left the stock.
        quantity: u64,
    },
    /// An order asked for its units back, but they had already left the stock, so
    /// they cannot be released; the order saga shows that an operator is needed.
    ReservationReleaseRefused {
        /// The order whose release was refused.
        order_id: Uuid,
        /// Units the order held.
        quantity: u64,
        /// Why, fit to show an operator.
        error: String,
    },
}

/// Why stock could not be reserved for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    /// Fewer units are available than the order needs.
    OutOfStock,
    /// No product with this SKU has been added.
    UnknownProduct,
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> String {
        let name = match self {
            ProductEvent::ProductAdded { .. } => "ProductAdded",
            ProductEvent::Restocked { .. } => "Restocked",
            ProductEvent::PriceChanged { .. } => "PriceChanged",
            ProductEvent::StockReserved { .. } => "StockReserved",
            ProductEvent::StockReservationRejected { .. } => "StockReservationRejected",
            ProductEvent::ReservationReleased { .. } => "ReservationReleased",
            ProductEvent::ReservationCommitted { .. } => "ReservationCommitted",
            ProductEvent::ReservationReleaseRefused { .. } => "ReservationReleaseRefused",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        Self::current_version(&self.event_type()).to_owned()
    }
}

/// No product event has changed its schema yet: every one is at version 1.0.
impl VersionedEvent for ProductEvent {
    const SCHEMA_CHANGES: &'static [SchemaChange] = &[];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_serializes_externally_tagged_with_its_field_names() {
        let order_id = Uuid::from_u128(7);
        let event = ProductEvent::StockReservationRejected {
            order_id,
            quantity: 5,
            available: 2,
            reason: RejectionReason::OutOfStock,
        };
        let expected = json!({"StockReservationRejected": {
            "order_id": order_id.to_string(),
            "quantity": 5,
            "available": 2,
            "reason": "OUT_OF_STOCK",
        }});
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<ProductEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn an_unknown_product_rejection_carries_its_reason_in_capitals() {
        let event = ProductEvent::StockReservationRejected {
            order_id: Uuid::from_u128(7),
            quantity: 1,
            available: 0,
            reason: RejectionReason::UnknownProduct,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json["StockReservationRejected"]["reason"],
            "UNKNOWN_PRODUCT"
        );
    }

    #[test]
    fn a_product_added_event_carries_plain_sku_name_and_cents() {
        let event = ProductEvent::ProductAdded {
            sku: "MUG-1".into(),
            name: "Blue mug".into(),
            price_cents: 1299,
            initial_stock: 10,
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"ProductAdded": {
                "sku": "MUG-1", "name": "Blue mug", "price_cents": 1299, "initial_stock": 10,
            }})
        );
    }

    #[test]
    fn the_event_type_is_the_variant_name_at_version_one() {
        let event = ProductEvent::Restocked { quantity: 1 };
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get(event.event_type()).is_some());
        assert_eq!(event.event_type(), "Restocked");
        assert_eq!(event.event_version(), "1.0");
    }
}

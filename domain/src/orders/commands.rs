//! Requests to change an order: the user's, and the saga's answers from other services.
//! Their fields are already validated values.

use uuid::Uuid;

use super::{CompensationStep, OrderRejectionReason};
use crate::values::{OrderLines, Sku};

/// A request to change an order, handled by [`Order`](super::Order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Creates the order, PENDING until inventory and payments answer.
    PlaceOrder {
        /// The order's id, which is also the aggregate id.
        order_id: Uuid,
        /// The customer who orders.
        customer_id: Uuid,
        /// What the customer wants.
        lines: OrderLines,
    },
    /// Inventory held a line's units at a unit price. Repeats and late answers are ignored.
    RecordStockReserved {
        /// The line's SKU.
        sku: Sku,
        /// Units held; they must be the units ordered.
        quantity: u64,
        /// The unit price when reserved, which the order charges.
        unit_price_cents: i64,
    },
    /// Inventory could not hold a line's units; a PENDING order is rejected.
    RecordStockRejected {
        /// The line's SKU.
        sku: Sku,
        /// Why inventory refused.
        reason: OrderRejectionReason,
    },
    /// Payments authorized the order's total; a PENDING order with all stock reserved is
    /// confirmed.
    RecordPaymentAuthorized {
        /// The amount authorized; it must be the order's total.
        amount_cents: i64,
    },
    /// Payments declined the order's total; a PENDING order is rejected.
    RecordPaymentDeclined {
        /// Why payments declined.
        reason: OrderRejectionReason,
    },
    /// The customer withdraws a PENDING or CONFIRMED order.
    Cancel {
        /// The customer's words, if any.
        reason: Option<String>,
    },
    /// A CONFIRMED order leaves the warehouse.
    Ship,
    /// Another service refused a compensation for the order; it needs an operator.
    /// A repeat of a recorded step and error is ignored.
    RecordCompensationFailed {
        /// The step that could not be applied.
        step: CompensationStep,
        /// What the refusing service said.
        error: String,
    },
}

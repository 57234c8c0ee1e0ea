//! Requests to change an order's payment. Their fields are already validated values.

use uuid::Uuid;

use crate::payments::DeclineReason;
use crate::values::Money;

/// A request to change an order's payment, handled by [`Payment`](super::Payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    /// Records that the customer's credit covers the order; the first decision stands.
    Authorize {
        /// The order paid for, whose id is also the aggregate id.
        order_id: Uuid,
        /// The customer who pays.
        customer_id: Uuid,
        /// The order's total.
        amount: Money,
    },
    /// Records that the order's total was refused; the first decision stands.
    Decline {
        /// The order paid for, whose id is also the aggregate id.
        order_id: Uuid,
        /// The customer who was to pay.
        customer_id: Uuid,
        /// The order's total.
        amount: Money,
        /// Why it was refused.
        reason: DeclineReason,
    },
    /// Cancels an authorized payment because the order was cancelled.
    Void,
    /// Charges an authorized payment because the order shipped.
    Capture,
}

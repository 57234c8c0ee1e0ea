//! Why an order command is refused.

use super::OrderStatus;
use crate::values::Sku;

/// An order command that breaks a business rule; the message is fit to show a user.
///
/// `AlreadyPlaced`, `NotFound`, `CannotCancel` and `CannotShip` answer the user. The
/// others mean a saga input contradicts the order, which is a fault upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `PlaceOrder` for an id that is already placed.
    #[error("an order with this id is already placed")]
    AlreadyPlaced,
    /// Any command but `PlaceOrder` for an order that is not placed.
    #[error("order not found")]
    NotFound,
    /// `Cancel` of an order that is neither PENDING nor CONFIRMED.
    #[error("an order that is {status} cannot be cancelled")]
    CannotCancel {
        /// The order's status when asked.
        status: OrderStatus,
    },
    /// `Ship` of an order that is not CONFIRMED.
    #[error("an order that is {status} cannot be shipped")]
    CannotShip {
        /// The order's status when asked.
        status: OrderStatus,
    },
    /// Inventory reserved a different number of units than the line ordered.
    #[error("{reserved} units of {sku} were reserved, but {ordered} were ordered")]
    QuantityMismatch {
        /// The line's SKU.
        sku: Sku,
        /// Units ordered.
        ordered: u64,
        /// Units reported reserved.
        reserved: u64,
    },
    /// Inventory reported a unit price below zero.
    #[error("the unit price reserved for {sku} is negative")]
    NegativeUnitPrice {
        /// The line's SKU.
        sku: Sku,
    },
    /// The order's total does not fit in the range of money.
    #[error("the order total is too large")]
    TotalOverflow,
    /// Payments authorized an amount other than the order's total.
    #[error("{amount_cents} cents were authorized for a total of {total_cents} cents")]
    PaymentAmountMismatch {
        /// The order's total in cents.
        total_cents: i64,
        /// The amount authorized in cents.
        amount_cents: i64,
    },
}

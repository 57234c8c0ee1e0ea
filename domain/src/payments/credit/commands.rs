//! Requests to change a customer's credit. The first three mirror customer events and
//! carry that event's sequence, so a redelivered one changes nothing.

use uuid::Uuid;

use crate::values::Money;

/// A request to change a customer's credit, handled by
/// [`CustomerCredit`](super::CustomerCredit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditCommand {
    /// Opens the account when the customer registers; an open account ignores it.
    OpenAccount {
        /// The customer's id, which is also the aggregate id.
        customer_id: Uuid,
        /// The limit the customer registered with.
        credit_limit: Money,
        /// The sequence of the customer event this comes from.
        customer_sequence: i64,
    },
    /// Follows a change of the customer's credit limit.
    UpdateLimit {
        /// The new limit.
        credit_limit: Money,
        /// The sequence of the customer event this comes from.
        customer_sequence: i64,
    },
    /// Follows the customer's deactivation: later requests for credit are declined.
    Suspend {
        /// The sequence of the customer event this comes from.
        customer_sequence: i64,
    },
    /// Holds credit for an order's total, or records why it was declined. The first
    /// decision for an order stands.
    ReserveCredit {
        /// The order the credit is for.
        order_id: Uuid,
        /// The order's total.
        amount: Money,
    },
    /// Gives an order's held credit back, when the order is cancelled.
    ReleaseCredit {
        /// The order whose credit is no longer needed.
        order_id: Uuid,
    },
    /// Charges an order's held credit, when the order ships.
    CaptureCredit {
        /// The order being charged.
        order_id: Uuid,
    },
}

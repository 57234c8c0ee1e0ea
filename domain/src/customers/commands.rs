//! Requests to change a customer. Their fields are already validated values.

use uuid::Uuid;

use crate::values::{Email, Money, PersonName};

/// A request to change a customer, handled by [`Customer`](super::Customer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerCommand {
    /// Creates the customer, active, with a credit limit for their orders.
    RegisterCustomer {
        /// The customer's id, which is also the aggregate id.
        customer_id: Uuid,
        /// How to address the customer.
        name: PersonName,
        /// How to reach the customer.
        email: Email,
        /// The most the customer's authorized and captured payments may add up to.
        credit_limit: Money,
    },
    /// Sets a new credit limit; setting the current limit again changes nothing.
    ChangeCreditLimit {
        /// The new limit.
        credit_limit: Money,
    },
    /// Stops the customer from placing orders; deactivating again changes nothing.
    Deactivate,
}

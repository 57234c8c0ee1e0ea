//! Why a customer command is refused.

/// A customer command that breaks a business rule; the message is fit to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    /// `RegisterCustomer` for an id that is already registered.
    #[error("a customer with this id is already registered")]
    AlreadyRegistered,
    /// Any command but `RegisterCustomer` for a customer that is not registered.
    #[error("customer not found")]
    NotFound,
    /// A change that only an active customer allows, asked of a deactivated one.
    #[error("the customer is deactivated")]
    Inactive,
}

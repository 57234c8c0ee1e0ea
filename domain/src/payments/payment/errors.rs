//! Why a payment command is refused.

/// A payment command that breaks a business rule; the message is fit to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// `Void` or `Capture` before the payment was authorized or declined.
    #[error("payment not found")]
    NotFound,
    /// `Capture` of a payment that was declined or voided.
    #[error("the payment is not authorized")]
    NotAuthorized,
}

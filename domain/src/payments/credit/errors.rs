//! Why a credit command is refused.

/// A credit command that cannot be decided; the message is fit to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditError {
    /// `UpdateLimit`, `Suspend` or `ReserveCredit` before the account is open. The
    /// customer's events may not have arrived yet, so the saga retries before declining.
    #[error("no credit account for this customer yet")]
    UnknownCustomer,
    /// `CaptureCredit` for an order that holds no credit: never reserved, declined or
    /// released.
    #[error("no credit is held for this order")]
    NothingToCapture,
}

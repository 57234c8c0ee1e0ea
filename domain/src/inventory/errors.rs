//! Why a product command is refused.

use uuid::Uuid;

/// A product command that breaks a business rule; the message is fit to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// `AddProduct` for a SKU that already exists.
    #[error("a product with this SKU already exists")]
    AlreadyExists,
    /// `Restock` or `ChangePrice` for a SKU that does not exist.
    #[error("product not found")]
    NotFound,
    /// A price of zero was given where a sale price is needed.
    #[error("price must be greater than zero")]
    PriceMustBePositive,
    /// The initial stock or a restock would take the stock past its limit.
    #[error("stock would exceed the allowed limit")]
    StockLimitExceeded,
    /// A commit for an order that holds no reservation: never reserved, rejected or released.
    #[error("no reservation for order {order_id}")]
    ReservationNotFound {
        /// The order named in the command.
        order_id: Uuid,
    },
}

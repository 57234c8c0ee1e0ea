//! Requests to change a product. Their fields are already validated values.

use uuid::Uuid;

use crate::values::{Money, ProductName, Quantity, Sku};

/// A request to change a product, handled by [`Product`](super::Product).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductCommand {
    /// Creates the product. The price must be above zero and `initial_stock` at most
    /// [`Product::MAX_INITIAL_STOCK`](super::Product::MAX_INITIAL_STOCK).
    AddProduct {
        /// The SKU, which is also the aggregate id.
        sku: Sku,
        /// The display name.
        name: ProductName,
        /// The unit price.
        price: Money,
        /// Units on hand from the start.
        initial_stock: u32,
    },
    /// Adds units to the stock on hand.
    Restock {
        /// Units received.
        quantity: Quantity,
    },
    /// Sets a new unit price; setting the current price again changes nothing.
    ChangePrice {
        /// The new unit price, above zero.
        price: Money,
    },
    /// Holds units for an order, or records why they could not be held; a SKU that was
    /// never added is rejected as unknown.
    ReserveStock {
        /// The order the units are for; one reservation per order.
        order_id: Uuid,
        /// Units the order needs.
        quantity: Quantity,
    },
    /// Gives an order's held units back to the available stock.
    ReleaseReservation {
        /// The order whose reservation ends.
        order_id: Uuid,
    },
    /// Ships an order's held units: they leave both the reserved and on-hand stock.
    CommitReservation {
        /// The order whose reservation is fulfilled.
        order_id: Uuid,
    },
}

//! Where an order stands and why it was rejected. Both appear in events and in the
//! query API as upper-case words.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::inventory::RejectionReason;
use crate::payments::DeclineReason;

/// Where an order stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed; waiting for stock and payment.
    Pending,
    /// Stock is reserved and payment authorized; it may ship.
    Confirmed,
    /// Stock or payment was refused. Final.
    Rejected,
    /// The customer withdrew it. Final.
    Cancelled,
    /// It left the warehouse. Final.
    Shipped,
}

impl OrderStatus {
    /// The status as it appears in JSON, such as `"PENDING"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Shipped => "SHIPPED",
        }
    }

    /// Whether no command can move the order out of this status any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Shipped
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderRejectionReason {
    /// A line asked for more units than were available.
    OutOfStock,
    /// A line named a SKU that no product has.
    UnknownProduct,
    /// The total is more than the customer's available credit.
    InsufficientCredit,
    /// Payments never learned of the customer.
    UnknownCustomer,
    /// The customer was deactivated.
    CustomerInactive,
}

/// The compensating step of the saga that could not be applied, which leaves the
/// order waiting for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompensationStep {
    /// Inventory could not give the order's reserved units back.
    ReleaseStock,
    /// Payments could not void the order's payment.
    VoidPayment,
}

impl From<RejectionReason> for OrderRejectionReason {
    fn from(reason: RejectionReason) -> Self {
        match reason {
            RejectionReason::OutOfStock => OrderRejectionReason::OutOfStock,
            RejectionReason::UnknownProduct => OrderRejectionReason::UnknownProduct,
        }
    }
}

impl From<DeclineReason> for OrderRejectionReason {
    fn from(reason: DeclineReason) -> Self {
        match reason {
            DeclineReason::InsufficientCredit => OrderRejectionReason::InsufficientCredit,
            DeclineReason::CustomerInactive => OrderRejectionReason::CustomerInactive,
            DeclineReason::UnknownCustomer => OrderRejectionReason::UnknownCustomer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_as_capitalized_words_matching_their_display() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Rejected,
            OrderStatus::Cancelled,
            OrderStatus::Shipped,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.to_string());
            assert_eq!(serde_json::from_value::<OrderStatus>(json).unwrap(), status);
        }
    }

    #[test]
    fn only_rejected_cancelled_and_shipped_are_final() {
        assert!(!OrderStatus::Pending.is_final());
        assert!(!OrderStatus::Confirmed.is_final());
        assert!(OrderStatus::Rejected.is_final());
        assert!(OrderStatus::Cancelled.is_final());
        assert!(OrderStatus::Shipped.is_final());
    }

    #[test]
    fn inventory_and_payment_reasons_become_the_same_order_reason() {
        let pairs = [
            (
                OrderRejectionReason::from(RejectionReason::OutOfStock),
                "OUT_OF_STOCK",
            ),
            (RejectionReason::UnknownProduct.into(), "UNKNOWN_PRODUCT"),
            (
                DeclineReason::InsufficientCredit.into(),
                "INSUFFICIENT_CREDIT",
            ),
            (DeclineReason::UnknownCustomer.into(), "UNKNOWN_CUSTOMER"),
            (DeclineReason::CustomerInactive.into(), "CUSTOMER_INACTIVE"),
        ];
        for (reason, json) in pairs {
            assert_eq!(serde_json::to_value(reason).unwrap(), json);
        }
    }
}

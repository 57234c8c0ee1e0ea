//! Why payments refused an order's total.

use serde::{Deserialize, Serialize};

/// Why credit for an order was refused; the order is rejected with the same reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeclineReason {
    /// The total is more than the customer's available credit.
    InsufficientCredit,
    /// The customer was deactivated.
    CustomerInactive,
    /// Payments never learned of the customer, even after retrying.
    UnknownCustomer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decline_reasons_serialize_as_capitalized_words() {
        let pairs = [
            (DeclineReason::InsufficientCredit, "INSUFFICIENT_CREDIT"),
            (DeclineReason::CustomerInactive, "CUSTOMER_INACTIVE"),
            (DeclineReason::UnknownCustomer, "UNKNOWN_CUSTOMER"),
        ];
        for (reason, json) in pairs {
            assert_eq!(serde_json::to_value(reason).unwrap(), json);
            assert_eq!(
                serde_json::from_value::<DeclineReason>(json.into()).unwrap(),
                reason
            );
        }
    }
}

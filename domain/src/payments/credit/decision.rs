//! What payments decided about one order's request for credit.

use serde::{Deserialize, Serialize};

use crate::payments::DeclineReason;
use crate::values::Money;

/// What became of one order's request for credit. The first answer stands; later
/// variants follow a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditDecision {
    /// The amount is held for the order.
    Reserved {
        /// The amount held.
        amount: Money,
    },
    /// The request was refused; nothing is held.
    Declined {
        /// The amount asked for.
        amount: Money,
        /// Why it was refused.
        reason: DeclineReason,
    },
    /// The amount was held and then given back.
    Released {
        /// The amount given back.
        amount: Money,
    },
    /// The amount was held and then charged.
    Captured {
        /// The amount charged.
        amount: Money,
    },
}

impl CreditDecision {
    /// The amount the order asked for.
    pub fn amount(self) -> Money {
        match self {
            CreditDecision::Reserved { amount }
            | CreditDecision::Declined { amount, .. }
            | CreditDecision::Released { amount }
            | CreditDecision::Captured { amount } => amount,
        }
    }
}

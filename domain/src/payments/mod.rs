//! The payments context: `CustomerCredit`, the service's own view of each customer's
//! credit learned from customer events, and `Payment`, the authorization of one order's
//! total and what became of it.

mod credit;
mod decline_reason;
mod payment;

pub use credit::{CreditCommand, CreditDecision, CreditError, CreditEvent, CustomerCredit};
pub use decline_reason::DeclineReason;
pub use payment::{Payment, PaymentCommand, PaymentError, PaymentEvent, PaymentStatus};

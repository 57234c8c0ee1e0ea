//! The `CustomerCredit` aggregate: a customer's credit limit as payments learned it, and
//! the credit held for and charged to their orders.

mod commands;
mod customer_credit;
mod decision;
mod errors;
mod events;

#[cfg(test)]
mod customer_credit_tests;
#[cfg(test)]
mod invariant_tests;

pub use commands::CreditCommand;
pub use customer_credit::CustomerCredit;
pub use decision::CreditDecision;
pub use errors::CreditError;
pub use events::CreditEvent;

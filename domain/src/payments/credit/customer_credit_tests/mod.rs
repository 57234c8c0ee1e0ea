//! Given/when/then tests of the customer credit aggregate, with the helpers they share.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::*;
use crate::payments::DeclineReason;
use crate::values::Money;

type CreditTest = TestFramework<CustomerCredit>;

const CUSTOMER: Uuid = Uuid::from_u128(1);
const ORDER: Uuid = Uuid::from_u128(2);
const OTHER_ORDER: Uuid = Uuid::from_u128(3);

fn credit() -> CreditTest {
    TestFramework::with(())
}

fn money(cents: i64) -> Money {
    Money::from_cents(cents).unwrap()
}

fn open(credit_limit_cents: i64, customer_sequence: i64) -> CreditCommand {
    CreditCommand::OpenAccount {
        customer_id: CUSTOMER,
        credit_limit: money(credit_limit_cents),
        customer_sequence,
    }
}

fn opened(credit_limit_cents: i64) -> CreditEvent {
    CreditEvent::CreditAccountOpened {
        customer_id: CUSTOMER,
        credit_limit_cents,
        customer_sequence: 1,
    }
}

fn update(credit_limit_cents: i64, customer_sequence: i64) -> CreditCommand {
    CreditCommand::UpdateLimit {
        credit_limit: money(credit_limit_cents),
        customer_sequence,
    }
}

fn limit_updated(credit_limit_cents: i64, customer_sequence: i64) -> CreditEvent {
    CreditEvent::CreditLimitUpdated {
        credit_limit_cents,
        customer_sequence,
    }
}

fn suspended(customer_sequence: i64) -> CreditEvent {
    CreditEvent::CreditAccountSuspended { customer_sequence }
}

fn reserve(order_id: Uuid, amount_cents: i64) -> CreditCommand {
    CreditCommand::ReserveCredit {
        order_id,
        amount: money(amount_cents),
    }
}

fn reserved(order_id: Uuid, amount_cents: i64) -> CreditEvent {
    CreditEvent::CreditReserved {
        order_id,
        amount_cents,
    }
}

fn declined(order_id: Uuid, amount_cents: i64, reason: DeclineReason) -> CreditEvent {
    CreditEvent::CreditDeclined {
        order_id,
        amount_cents,
        reason,
    }
}

fn released(order_id: Uuid, amount_cents: i64) -> CreditEvent {
    CreditEvent::CreditReleased {
        order_id,
        amount_cents,
    }
}

fn captured(order_id: Uuid, amount_cents: i64) -> CreditEvent {
    CreditEvent::CreditCaptured {
        order_id,
        amount_cents,
    }
}

fn replay(events: Vec<CreditEvent>) -> CustomerCredit {
    let mut credit = CustomerCredit::default();
    for event in events {
        credit.apply(event);
    }
    credit
}

mod accounts;
mod reservations;

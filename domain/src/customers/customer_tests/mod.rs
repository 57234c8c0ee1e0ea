//! Given/when/then tests of the customer aggregate, with the helpers they share.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::*;
use crate::values::{Email, Money, PersonName};

type CustomerTest = TestFramework<Customer>;

const CUSTOMER: Uuid = Uuid::from_u128(1);

fn customer() -> CustomerTest {
    TestFramework::with(())
}

fn money(cents: i64) -> Money {
    Money::from_cents(cents).unwrap()
}

fn register(credit_limit_cents: i64) -> CustomerCommand {
    CustomerCommand::RegisterCustomer {
        customer_id: CUSTOMER,
        name: PersonName::parse("Ada Lovelace").unwrap(),
        email: Email::parse("Ada@Example.com").unwrap(),
        credit_limit: money(credit_limit_cents),
    }
}

fn registered(credit_limit_cents: i64) -> CustomerEvent {
    CustomerEvent::CustomerRegistered {
        customer_id: CUSTOMER,
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        credit_limit_cents,
    }
}

fn change_limit(credit_limit_cents: i64) -> CustomerCommand {
    CustomerCommand::ChangeCreditLimit {
        credit_limit: money(credit_limit_cents),
    }
}

fn limit_changed(credit_limit_cents: i64) -> CustomerEvent {
    CustomerEvent::CreditLimitChanged { credit_limit_cents }
}

fn deactivated() -> CustomerEvent {
    CustomerEvent::CustomerDeactivated {}
}

fn replay(events: Vec<CustomerEvent>) -> Customer {
    let mut customer = Customer::default();
    for event in events {
        customer.apply(event);
    }
    customer
}

mod credit_limit;
mod registration;

//! Given/when/then tests of the payment aggregate.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::*;
use crate::payments::DeclineReason;
use crate::values::Money;

const ORDER: Uuid = Uuid::from_u128(1);
const CUSTOMER: Uuid = Uuid::from_u128(2);
const AMOUNT: i64 = 3_048;

fn payment() -> TestFramework<Payment> {
    TestFramework::with(())
}

fn authorize() -> PaymentCommand {
    PaymentCommand::Authorize {
        order_id: ORDER,
        customer_id: CUSTOMER,
        amount: Money::from_cents(AMOUNT).unwrap(),
    }
}

fn decline(reason: DeclineReason) -> PaymentCommand {
    PaymentCommand::Decline {
        order_id: ORDER,
        customer_id: CUSTOMER,
        amount: Money::from_cents(AMOUNT).unwrap(),
        reason,
    }
}

fn authorized() -> PaymentEvent {
    PaymentEvent::PaymentAuthorized {
        order_id: ORDER,
        customer_id: CUSTOMER,
        amount_cents: AMOUNT,
    }
}

fn declined(reason: DeclineReason) -> PaymentEvent {
    PaymentEvent::PaymentDeclined {
        order_id: ORDER,
        customer_id: CUSTOMER,
        amount_cents: AMOUNT,
        reason,
    }
}

fn voided() -> PaymentEvent {
    PaymentEvent::PaymentVoided {
        amount_cents: AMOUNT,
    }
}

fn captured() -> PaymentEvent {
    PaymentEvent::PaymentCaptured {
        amount_cents: AMOUNT,
    }
}

fn replay(events: Vec<PaymentEvent>) -> Payment {
    let mut payment = Payment::default();
    for event in events {
        payment.apply(event);
    }
    payment
}

#[test]
fn authorizing_a_payment_records_the_order_customer_and_amount() {
    payment()
        .given_no_previous_events()
        .when(authorize())
        .then_expect_events(vec![authorized()]);
    let payment = replay(vec![authorized()]);
    assert!(payment.exists());
    assert_eq!(payment.order_id(), Some(ORDER));
    assert_eq!(payment.customer_id(), Some(CUSTOMER));
    assert_eq!(payment.amount(), Money::from_cents(AMOUNT).unwrap());
    assert_eq!(payment.status(), Some(PaymentStatus::Authorized));
    assert_eq!(payment.reason(), None);
}

#[test]
fn declining_a_payment_records_the_reason() {
    payment()
        .given_no_previous_events()
        .when(decline(DeclineReason::InsufficientCredit))
        .then_expect_events(vec![declined(DeclineReason::InsufficientCredit)]);
    let payment = replay(vec![declined(DeclineReason::UnknownCustomer)]);
    assert_eq!(payment.status(), Some(PaymentStatus::Declined));
    assert_eq!(payment.reason(), Some(DeclineReason::UnknownCustomer));
}

#[test]
fn a_second_decision_records_nothing_because_the_first_one_stands() {
    for history in [
        vec![authorized()],
        vec![declined(DeclineReason::CustomerInactive)],
        vec![authorized(), voided()],
        vec![authorized(), captured()],
    ] {
        for command in [authorize(), decline(DeclineReason::InsufficientCredit)] {
            payment()
                .given(history.clone())
                .when(command)
                .then_expect_events(vec![]);
        }
    }
}

#[test]
fn voiding_an_authorized_payment_records_the_amount() {
    payment()
        .given(vec![authorized()])
        .when(PaymentCommand::Void)
        .then_expect_events(vec![voided()]);
    let payment = replay(vec![authorized(), voided()]);
    assert_eq!(payment.status(), Some(PaymentStatus::Voided));
}

#[test]
fn voiding_a_payment_that_is_declined_or_voided_records_nothing() {
    for history in [
        vec![declined(DeclineReason::InsufficientCredit)],
        vec![authorized(), voided()],
    ] {
        payment()
            .given(history)
            .when(PaymentCommand::Void)
            .then_expect_events(vec![]);
    }
}

#[test]
fn voiding_a_captured_payment_is_refused_by_an_event_once() {
    let refused = PaymentEvent::PaymentVoidRefused {
        amount_cents: AMOUNT,
        error: format!("the payment of {AMOUNT} cents was already captured and cannot be voided"),
    };
    payment()
        .given(vec![authorized(), captured()])
        .when(PaymentCommand::Void)
        .then_expect_events(vec![refused.clone()]);
    payment()
        .given(vec![authorized(), captured(), refused.clone()])
        .when(PaymentCommand::Void)
        .then_expect_events(vec![]);
    let payment = replay(vec![authorized(), captured(), refused]);
    assert_eq!(payment.status(), Some(PaymentStatus::Captured));
}

#[test]
fn capturing_an_authorized_payment_records_the_amount() {
    payment()
        .given(vec![authorized()])
        .when(PaymentCommand::Capture)
        .then_expect_events(vec![captured()]);
    let payment = replay(vec![authorized(), captured()]);
    assert_eq!(payment.status(), Some(PaymentStatus::Captured));
}

#[test]
fn capturing_twice_records_nothing_the_second_time() {
    payment()
        .given(vec![authorized(), captured()])
        .when(PaymentCommand::Capture)
        .then_expect_events(vec![]);
}

#[test]
fn capturing_a_declined_or_voided_payment_fails_as_not_authorized() {
    for history in [
        vec![declined(DeclineReason::InsufficientCredit)],
        vec![authorized(), voided()],
    ] {
        payment()
            .given(history)
            .when(PaymentCommand::Capture)
            .then_expect_error(PaymentError::NotAuthorized);
    }
}

#[test]
fn voiding_or_capturing_before_any_decision_fails_as_not_found() {
    for command in [PaymentCommand::Void, PaymentCommand::Capture] {
        payment()
            .given_no_previous_events()
            .when(command)
            .then_expect_error(PaymentError::NotFound);
    }
}

#[test]
fn the_state_survives_a_json_round_trip_with_its_status_in_capitals() {
    let payment = replay(vec![declined(DeclineReason::CustomerInactive)]);
    let json = serde_json::to_value(&payment).unwrap();
    assert_eq!(json["status"], "DECLINED");
    assert_eq!(json["reason"], "CUSTOMER_INACTIVE");
    assert_eq!(json["amount"], AMOUNT);
    assert_eq!(serde_json::from_value::<Payment>(json).unwrap(), payment);
}

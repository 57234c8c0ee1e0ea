use super::*;

#[test]
fn reserving_within_the_available_credit_holds_it() {
    credit()
        .given(vec![opened(50_000)])
        .when(reserve(ORDER, 20_000))
        .then_expect_events(vec![reserved(ORDER, 20_000)]);
    let credit = replay(vec![opened(50_000), reserved(ORDER, 20_000)]);
    assert_eq!(credit.reserved(), money(20_000));
    assert_eq!(credit.available(), money(30_000));
    assert_eq!(
        credit.decision(ORDER),
        Some(CreditDecision::Reserved {
            amount: money(20_000)
        })
    );
}

#[test]
fn reserving_exactly_the_available_credit_is_allowed() {
    credit()
        .given(vec![opened(50_000), reserved(OTHER_ORDER, 20_000)])
        .when(reserve(ORDER, 30_000))
        .then_expect_events(vec![reserved(ORDER, 30_000)]);
}

#[test]
fn reserving_more_than_the_available_credit_is_declined_as_insufficient() {
    let history = vec![
        opened(50_000),
        reserved(OTHER_ORDER, 20_000),
        captured(OTHER_ORDER, 20_000),
        reserved(Uuid::from_u128(9), 10_000),
    ];
    credit()
        .given(history)
        .when(reserve(ORDER, 20_001))
        .then_expect_events(vec![declined(
            ORDER,
            20_001,
            DeclineReason::InsufficientCredit,
        )]);
}

#[test]
fn reserving_on_a_suspended_account_is_declined_as_customer_inactive() {
    credit()
        .given(vec![opened(50_000), suspended(2)])
        .when(reserve(ORDER, 1))
        .then_expect_events(vec![declined(ORDER, 1, DeclineReason::CustomerInactive)]);
}

#[test]
fn reserving_before_the_account_is_open_fails_as_unknown_customer() {
    credit()
        .given_no_previous_events()
        .when(reserve(ORDER, 1))
        .then_expect_error(CreditError::UnknownCustomer);
}

#[test]
fn reserving_again_for_an_answered_order_records_nothing() {
    let declined = declined(ORDER, 90_000, DeclineReason::InsufficientCredit);
    for history in [
        vec![opened(50_000), reserved(ORDER, 100)],
        vec![opened(50_000), declined],
        vec![opened(50_000), reserved(ORDER, 100), released(ORDER, 100)],
        vec![opened(50_000), reserved(ORDER, 100), captured(ORDER, 100)],
    ] {
        credit()
            .given(history)
            .when(reserve(ORDER, 100))
            .then_expect_events(vec![]);
    }
}

#[test]
fn a_declined_order_keeps_its_decision_and_holds_nothing() {
    let credit = replay(vec![
        opened(50_000),
        declined(ORDER, 90_000, DeclineReason::InsufficientCredit),
    ]);
    assert_eq!(credit.reserved(), Money::ZERO);
    let decision = credit.decision(ORDER).unwrap();
    assert_eq!(
        decision,
        CreditDecision::Declined {
            amount: money(90_000),
            reason: DeclineReason::InsufficientCredit,
        }
    );
    assert_eq!(decision.amount(), money(90_000));
    assert_eq!(credit.decision(OTHER_ORDER), None);
}

#[test]
fn releasing_reserved_credit_gives_it_back() {
    credit()
        .given(vec![opened(50_000), reserved(ORDER, 20_000)])
        .when(CreditCommand::ReleaseCredit { order_id: ORDER })
        .then_expect_events(vec![released(ORDER, 20_000)]);
    let credit = replay(vec![
        opened(50_000),
        reserved(ORDER, 20_000),
        released(ORDER, 20_000),
    ]);
    assert_eq!(credit.reserved(), Money::ZERO);
    assert_eq!(credit.available(), money(50_000));
}

#[test]
fn releasing_credit_that_is_not_held_records_nothing() {
    for history in [
        vec![],
        vec![opened(50_000)],
        vec![
            opened(50_000),
            declined(ORDER, 1, DeclineReason::CustomerInactive),
        ],
        vec![opened(50_000), reserved(ORDER, 1), released(ORDER, 1)],
        vec![opened(50_000), reserved(ORDER, 1), captured(ORDER, 1)],
    ] {
        credit()
            .given(history)
            .when(CreditCommand::ReleaseCredit { order_id: ORDER })
            .then_expect_events(vec![]);
    }
}

#[test]
fn capturing_reserved_credit_charges_it_and_it_stays_used() {
    credit()
        .given(vec![opened(50_000), reserved(ORDER, 20_000)])
        .when(CreditCommand::CaptureCredit { order_id: ORDER })
        .then_expect_events(vec![captured(ORDER, 20_000)]);
    let credit = replay(vec![
        opened(50_000),
        reserved(ORDER, 20_000),
        captured(ORDER, 20_000),
    ]);
    assert_eq!(credit.reserved(), Money::ZERO);
    assert_eq!(credit.captured(), money(20_000));
    assert_eq!(credit.available(), money(30_000));
}

#[test]
fn capturing_twice_records_nothing_the_second_time() {
    credit()
        .given(vec![opened(50_000), reserved(ORDER, 1), captured(ORDER, 1)])
        .when(CreditCommand::CaptureCredit { order_id: ORDER })
        .then_expect_events(vec![]);
}

#[test]
fn capturing_credit_that_is_not_held_fails_as_nothing_to_capture() {
    for history in [
        vec![],
        vec![opened(50_000)],
        vec![
            opened(50_000),
            declined(ORDER, 1, DeclineReason::CustomerInactive),
        ],
        vec![opened(50_000), reserved(ORDER, 1), released(ORDER, 1)],
    ] {
        credit()
            .given(history)
            .when(CreditCommand::CaptureCredit { order_id: ORDER })
            .then_expect_error(CreditError::NothingToCapture);
    }
}

#[test]
fn lowering_the_limit_below_the_credit_in_use_leaves_none_available() {
    let history = vec![
        opened(50_000),
        reserved(ORDER, 40_000),
        limit_updated(30_000, 2),
    ];
    assert_eq!(replay(history.clone()).available(), Money::ZERO);
    credit()
        .given(history)
        .when(reserve(OTHER_ORDER, 1))
        .then_expect_events(vec![declined(
            OTHER_ORDER,
            1,
            DeclineReason::InsufficientCredit,
        )]);
}

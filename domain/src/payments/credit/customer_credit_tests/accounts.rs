use super::*;

#[test]
fn opening_an_account_records_the_limit_and_the_customer_sequence() {
    credit()
        .given_no_previous_events()
        .when(open(50_000, 1))
        .then_expect_events(vec![opened(50_000)]);
    let credit = replay(vec![opened(50_000)]);
    assert!(credit.is_open());
    assert!(!credit.is_suspended());
    assert_eq!(credit.customer_id(), Some(CUSTOMER));
    assert_eq!(credit.credit_limit(), money(50_000));
    assert_eq!(credit.available(), money(50_000));
    assert_eq!(credit.customer_sequence(), 1);
}

#[test]
fn opening_an_open_account_again_records_nothing() {
    for command in [open(50_000, 1), open(90_000, 5)] {
        credit()
            .given(vec![opened(50_000)])
            .when(command)
            .then_expect_events(vec![]);
    }
}

#[test]
fn updating_or_suspending_before_the_account_is_open_fails_as_unknown_customer() {
    for command in [
        update(10, 2),
        CreditCommand::Suspend {
            customer_sequence: 2,
        },
    ] {
        credit()
            .given_no_previous_events()
            .when(command)
            .then_expect_error(CreditError::UnknownCustomer);
    }
}

#[test]
fn updating_the_limit_records_it_with_its_customer_sequence() {
    credit()
        .given(vec![opened(50_000)])
        .when(update(80_000, 2))
        .then_expect_events(vec![limit_updated(80_000, 2)]);
    let credit = replay(vec![opened(50_000), limit_updated(80_000, 2)]);
    assert_eq!(credit.credit_limit(), money(80_000));
    assert_eq!(credit.customer_sequence(), 2);
}

#[test]
fn updating_to_the_current_limit_records_nothing() {
    credit()
        .given(vec![opened(50_000)])
        .when(update(50_000, 2))
        .then_expect_events(vec![]);
}

#[test]
fn a_customer_event_already_applied_is_ignored_when_redelivered() {
    let history = vec![opened(50_000), limit_updated(80_000, 3)];
    for command in [
        update(70_000, 3),
        update(70_000, 2),
        CreditCommand::Suspend {
            customer_sequence: 3,
        },
    ] {
        credit()
            .given(history.clone())
            .when(command)
            .then_expect_events(vec![]);
    }
}

#[test]
fn suspending_an_account_records_it() {
    credit()
        .given(vec![opened(50_000)])
        .when(CreditCommand::Suspend {
            customer_sequence: 2,
        })
        .then_expect_events(vec![suspended(2)]);
    let credit = replay(vec![opened(50_000), suspended(2)]);
    assert!(credit.is_suspended());
    assert_eq!(credit.customer_sequence(), 2);
}

#[test]
fn suspending_a_suspended_account_records_nothing() {
    credit()
        .given(vec![opened(50_000), suspended(2)])
        .when(CreditCommand::Suspend {
            customer_sequence: 3,
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_state_survives_a_json_round_trip() {
    let credit = replay(vec![
        opened(50_000),
        reserved(ORDER, 1_000),
        declined(OTHER_ORDER, 90_000, DeclineReason::InsufficientCredit),
    ]);
    let json = serde_json::to_value(&credit).unwrap();
    assert_eq!(json["reserved"], 1_000);
    assert_eq!(
        json["decisions"][ORDER.to_string()],
        serde_json::json!({"Reserved": {"amount": 1_000}})
    );
    assert_eq!(
        serde_json::from_value::<CustomerCredit>(json).unwrap(),
        credit
    );
}

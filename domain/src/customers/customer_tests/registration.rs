use super::*;

#[test]
fn registering_a_new_customer_records_them_with_a_normalized_email() {
    customer()
        .given_no_previous_events()
        .when(register(50_000))
        .then_expect_events(vec![registered(50_000)]);
}

#[test]
fn a_registered_customer_is_active_with_their_details() {
    let customer = replay(vec![registered(50_000)]);
    assert!(customer.exists());
    assert!(customer.is_active());
    assert_eq!(customer.customer_id(), Some(CUSTOMER));
    assert_eq!(customer.name(), "Ada Lovelace");
    assert_eq!(customer.email(), "ada@example.com");
    assert_eq!(customer.credit_limit(), money(50_000));
}

#[test]
fn registering_with_no_credit_at_all_is_allowed() {
    customer()
        .given_no_previous_events()
        .when(register(0))
        .then_expect_events(vec![registered(0)]);
}

#[test]
fn registering_twice_fails_as_already_registered() {
    for history in [
        vec![registered(50_000)],
        vec![registered(50_000), deactivated()],
    ] {
        customer()
            .given(history)
            .when(register(50_000))
            .then_expect_error(CustomerError::AlreadyRegistered);
    }
}

#[test]
fn every_other_command_on_a_missing_customer_fails_as_not_found() {
    for command in [change_limit(100), CustomerCommand::Deactivate] {
        customer()
            .given_no_previous_events()
            .when(command)
            .then_expect_error(CustomerError::NotFound);
    }
}

#[test]
fn deactivating_an_active_customer_records_it() {
    customer()
        .given(vec![registered(50_000)])
        .when(CustomerCommand::Deactivate)
        .then_expect_events(vec![deactivated()]);
    let customer = replay(vec![registered(50_000), deactivated()]);
    assert!(customer.exists());
    assert!(!customer.is_active());
}

#[test]
fn deactivating_twice_records_nothing_the_second_time() {
    customer()
        .given(vec![registered(50_000), deactivated()])
        .when(CustomerCommand::Deactivate)
        .then_expect_events(vec![]);
}

#[test]
fn the_state_survives_a_json_round_trip() {
    let customer = replay(vec![registered(50_000), limit_changed(70_000)]);
    let json = serde_json::to_value(&customer).unwrap();
    assert_eq!(json["email"], "ada@example.com");
    assert_eq!(json["credit_limit"], 70_000);
    assert_eq!(json["active"], true);
    assert_eq!(serde_json::from_value::<Customer>(json).unwrap(), customer);
}

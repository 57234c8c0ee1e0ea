use super::*;

#[test]
fn changing_the_credit_limit_records_the_new_limit() {
    customer()
        .given(vec![registered(50_000)])
        .when(change_limit(80_000))
        .then_expect_events(vec![limit_changed(80_000)]);
    let customer = replay(vec![registered(50_000), limit_changed(80_000)]);
    assert_eq!(customer.credit_limit(), money(80_000));
}

#[test]
fn lowering_the_credit_limit_to_zero_is_allowed() {
    customer()
        .given(vec![registered(50_000)])
        .when(change_limit(0))
        .then_expect_events(vec![limit_changed(0)]);
}

#[test]
fn changing_to_the_current_credit_limit_records_nothing() {
    customer()
        .given(vec![registered(50_000), limit_changed(60_000)])
        .when(change_limit(60_000))
        .then_expect_events(vec![]);
}

#[test]
fn changing_the_credit_limit_of_a_deactivated_customer_fails_as_inactive() {
    customer()
        .given(vec![registered(50_000), deactivated()])
        .when(change_limit(80_000))
        .then_expect_error(CustomerError::Inactive);
}

#[test]
fn a_deactivated_customer_is_inactive_even_at_the_same_credit_limit() {
    customer()
        .given(vec![registered(50_000), deactivated()])
        .when(change_limit(50_000))
        .then_expect_error(CustomerError::Inactive);
}

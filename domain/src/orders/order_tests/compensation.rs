use super::*;

fn void_refused() -> OrderCommand {
    OrderCommand::RecordCompensationFailed {
        step: CompensationStep::VoidPayment,
        error: "the payment was already captured".into(),
    }
}

fn compensation_failed() -> OrderEvent {
    OrderEvent::CompensationFailed {
        step: CompensationStep::VoidPayment,
        error: "the payment was already captured".into(),
    }
}

fn cancelled_from_confirmed() -> Vec<OrderEvent> {
    let mut events = confirmed();
    events.push(cancelled(OrderStatus::Confirmed));
    events
}

#[test]
fn a_refused_compensation_is_recorded_on_the_cancelled_order() {
    order()
        .given(cancelled_from_confirmed())
        .when(void_refused())
        .then_expect_events(vec![compensation_failed()]);
    let mut history = cancelled_from_confirmed();
    history.push(compensation_failed());
    let order = replay(history);
    assert_eq!(order.status(), Some(OrderStatus::Cancelled));
    assert_eq!(
        order.compensation_failures(),
        &[CompensationFailure {
            step: CompensationStep::VoidPayment,
            error: "the payment was already captured".into(),
        }]
    );
}

#[test]
fn a_redelivered_refusal_records_nothing_more() {
    let mut history = cancelled_from_confirmed();
    history.push(compensation_failed());
    order()
        .given(history)
        .when(void_refused())
        .then_expect_events(vec![]);
}

#[test]
fn a_refusal_of_another_step_is_recorded_as_well() {
    let mut history = cancelled_from_confirmed();
    history.push(compensation_failed());
    let release_refused = OrderCommand::RecordCompensationFailed {
        step: CompensationStep::ReleaseStock,
        error: "MUG-1: units already shipped".into(),
    };
    order()
        .given(history)
        .when(release_refused)
        .then_expect_events(vec![OrderEvent::CompensationFailed {
            step: CompensationStep::ReleaseStock,
            error: "MUG-1: units already shipped".into(),
        }]);
}

#[test]
fn a_refusal_for_an_order_never_placed_is_not_found() {
    order()
        .given_no_previous_events()
        .when(void_refused())
        .then_expect_error(OrderError::NotFound);
}

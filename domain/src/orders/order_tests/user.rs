use super::*;

#[test]
fn cancelling_a_pending_order_records_the_reason_and_the_status_it_left() {
    order()
        .given(partly_reserved())
        .when(cancel())
        .then_expect_events(vec![cancelled(OrderStatus::Pending)]);
    let order = replay(cancelled_while_pending());
    assert_eq!(order.status(), Some(OrderStatus::Cancelled));
    assert_eq!(order.cancel_reason(), Some("changed my mind"));
    assert_eq!(order.reason(), None);
}

#[test]
fn cancelling_a_confirmed_order_is_allowed() {
    order()
        .given(confirmed())
        .when(cancel())
        .then_expect_events(vec![cancelled(OrderStatus::Confirmed)]);
}

#[test]
fn cancelling_without_a_reason_records_none() {
    order()
        .given(pending())
        .when(OrderCommand::Cancel { reason: None })
        .then_expect_events(vec![OrderEvent::OrderCancelled {
            reason: None,
            cancelled_from: OrderStatus::Pending,
        }]);
}

#[test]
fn cancelling_a_rejected_cancelled_or_shipped_order_fails_with_its_status() {
    for (history, status) in [
        (out_of_stock(), OrderStatus::Rejected),
        (cancelled_while_pending(), OrderStatus::Cancelled),
        (shipped(), OrderStatus::Shipped),
    ] {
        order()
            .given(history)
            .when(cancel())
            .then_expect_error(OrderError::CannotCancel { status });
    }
}

#[test]
fn shipping_a_confirmed_order_records_it() {
    order()
        .given(confirmed())
        .when(OrderCommand::Ship)
        .then_expect_events(vec![OrderEvent::OrderShipped {}]);
    assert_eq!(replay(shipped()).status(), Some(OrderStatus::Shipped));
}

#[test]
fn shipping_an_order_that_is_not_confirmed_fails_with_its_status() {
    for (history, status) in [
        (fully_reserved(), OrderStatus::Pending),
        (out_of_stock(), OrderStatus::Rejected),
        (cancelled_while_pending(), OrderStatus::Cancelled),
        (shipped(), OrderStatus::Shipped),
    ] {
        order()
            .given(history)
            .when(OrderCommand::Ship)
            .then_expect_error(OrderError::CannotShip { status });
    }
}

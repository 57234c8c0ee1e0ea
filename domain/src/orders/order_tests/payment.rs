use super::*;

fn authorize(amount_cents: i64) -> OrderCommand {
    OrderCommand::RecordPaymentAuthorized { amount_cents }
}

fn decline(reason: OrderRejectionReason) -> OrderCommand {
    OrderCommand::RecordPaymentDeclined { reason }
}

#[test]
fn an_authorized_payment_confirms_an_order_with_all_stock_reserved() {
    order()
        .given(fully_reserved())
        .when(authorize(TOTAL))
        .then_expect_events(vec![OrderEvent::OrderConfirmed { total_cents: TOTAL }]);
    let order = replay(confirmed());
    assert_eq!(order.status(), Some(OrderStatus::Confirmed));
    assert_eq!(order.total(), Money::from_cents(TOTAL).ok());
}

#[test]
fn an_authorized_payment_before_all_stock_is_reserved_records_nothing() {
    for history in [pending(), partly_reserved()] {
        order()
            .given(history)
            .when(authorize(TOTAL))
            .then_expect_events(vec![]);
    }
}

#[test]
fn an_authorized_payment_for_an_order_no_longer_pending_records_nothing() {
    let mut cancelled_after_reserving = fully_reserved();
    cancelled_after_reserving.push(cancelled(OrderStatus::Pending));
    for history in [confirmed(), cancelled_after_reserving, shipped()] {
        order()
            .given(history)
            .when(authorize(TOTAL))
            .then_expect_events(vec![]);
    }
}

#[test]
fn an_authorized_amount_other_than_the_total_fails_as_a_mismatch() {
    order()
        .given(fully_reserved())
        .when(authorize(TOTAL - 1))
        .then_expect_error(OrderError::PaymentAmountMismatch {
            total_cents: TOTAL,
            amount_cents: TOTAL - 1,
        });
}

#[test]
fn a_declined_payment_rejects_a_pending_order_with_its_reason() {
    order()
        .given(fully_reserved())
        .when(decline(OrderRejectionReason::InsufficientCredit))
        .then_expect_events(vec![rejected(OrderRejectionReason::InsufficientCredit)]);
    let mut history = fully_reserved();
    history.push(rejected(OrderRejectionReason::CustomerInactive));
    let order = replay(history);
    assert_eq!(order.status(), Some(OrderStatus::Rejected));
    assert_eq!(order.reason(), Some(OrderRejectionReason::CustomerInactive));
}

#[test]
fn a_declined_payment_for_an_order_no_longer_pending_records_nothing() {
    for history in [confirmed(), out_of_stock(), cancelled_while_pending()] {
        order()
            .given(history)
            .when(decline(OrderRejectionReason::UnknownCustomer))
            .then_expect_events(vec![]);
    }
}

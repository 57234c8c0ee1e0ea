use super::*;

#[test]
fn reserving_a_line_records_its_unit_price() {
    order()
        .given(pending())
        .when(reserve("MUG-1", 2, 1299))
        .then_expect_events(vec![line_reserved("MUG-1", 2, 1299)]);
    let order = replay(partly_reserved());
    assert_eq!(order.lines()[0].unit_price, Money::from_cents(1299).ok());
    assert_eq!(order.lines()[1].unit_price, None);
    assert_eq!(order.total(), None);
}

#[test]
fn reserving_the_last_line_also_records_that_all_stock_is_reserved_with_the_total() {
    order()
        .given(partly_reserved())
        .when(reserve("TEA-2", 1, 450))
        .then_expect_events(vec![line_reserved("TEA-2", 1, 450), stock_reserved(TOTAL)]);
    let order = replay(fully_reserved());
    assert!(order.is_stock_reserved());
    assert_eq!(order.total(), Money::from_cents(TOTAL).ok());
    assert_eq!(order.status(), Some(OrderStatus::Pending));
}

#[test]
fn reserving_the_only_line_records_both_events_at_once() {
    order()
        .given(vec![placed(&[("MUG-1", 3)])])
        .when(reserve("MUG-1", 3, 1299))
        .then_expect_events(vec![line_reserved("MUG-1", 3, 1299), stock_reserved(3897)]);
}

#[test]
fn reserving_lines_in_any_order_gives_the_same_total() {
    let mut tea_first = pending();
    tea_first.push(line_reserved("TEA-2", 1, 450));
    order()
        .given(tea_first)
        .when(reserve("MUG-1", 2, 1299))
        .then_expect_events(vec![line_reserved("MUG-1", 2, 1299), stock_reserved(TOTAL)]);
}

#[test]
fn reserving_a_line_again_records_nothing() {
    for (history, command) in [
        (partly_reserved(), reserve("MUG-1", 2, 1299)),
        (fully_reserved(), reserve("TEA-2", 1, 450)),
    ] {
        order()
            .given(history)
            .when(command)
            .then_expect_events(vec![]);
    }
}

#[test]
fn reserving_an_sku_the_order_lacks_records_nothing() {
    order()
        .given(pending())
        .when(reserve("LAMP-9", 1, 5000))
        .then_expect_events(vec![]);
}

#[test]
fn a_reservation_arriving_after_the_order_left_pending_records_nothing() {
    for history in [out_of_stock(), cancelled_while_pending(), confirmed()] {
        order()
            .given(history)
            .when(reserve("TEA-2", 1, 450))
            .then_expect_events(vec![]);
    }
}

#[test]
fn reserving_other_than_the_ordered_units_fails_as_a_mismatch() {
    order()
        .given(pending())
        .when(reserve("MUG-1", 3, 1299))
        .then_expect_error(OrderError::QuantityMismatch {
            sku: sku("MUG-1"),
            ordered: 2,
            reserved: 3,
        });
}

#[test]
fn reserving_at_a_negative_unit_price_fails() {
    order()
        .given(pending())
        .when(reserve("MUG-1", 2, -1))
        .then_expect_error(OrderError::NegativeUnitPrice { sku: sku("MUG-1") });
}

#[test]
fn a_total_too_large_for_money_fails_as_an_overflow() {
    order()
        .given(partly_reserved())
        .when(reserve("TEA-2", 1, i64::MAX))
        .then_expect_error(OrderError::TotalOverflow);
}

#[test]
fn a_stock_rejection_rejects_a_pending_order_with_its_reason() {
    for (history, reason) in [
        (pending(), OrderRejectionReason::OutOfStock),
        (partly_reserved(), OrderRejectionReason::UnknownProduct),
    ] {
        order()
            .given(history)
            .when(OrderCommand::RecordStockRejected {
                sku: sku("TEA-2"),
                reason,
            })
            .then_expect_events(vec![rejected(reason)]);
    }
    let order = replay(out_of_stock());
    assert_eq!(order.status(), Some(OrderStatus::Rejected));
    assert_eq!(order.reason(), Some(OrderRejectionReason::OutOfStock));
}

#[test]
fn a_stock_rejection_after_all_stock_is_reserved_or_the_order_left_pending_records_nothing() {
    for history in [fully_reserved(), out_of_stock(), cancelled_while_pending()] {
        order()
            .given(history)
            .when(OrderCommand::RecordStockRejected {
                sku: sku("TEA-2"),
                reason: OrderRejectionReason::OutOfStock,
            })
            .then_expect_events(vec![]);
    }
}

#[test]
fn a_stock_rejection_for_an_sku_the_order_lacks_records_nothing() {
    order()
        .given(pending())
        .when(OrderCommand::RecordStockRejected {
            sku: sku("LAMP-9"),
            reason: OrderRejectionReason::UnknownProduct,
        })
        .then_expect_events(vec![]);
}

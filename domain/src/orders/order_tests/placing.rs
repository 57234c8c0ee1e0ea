use super::*;

#[test]
fn placing_an_order_records_its_lines_in_the_given_order() {
    order()
        .given_no_previous_events()
        .when(place(&[("TEA-2", 1), ("MUG-1", 2)]))
        .then_expect_events(vec![placed(&[("TEA-2", 1), ("MUG-1", 2)])]);
}

#[test]
fn a_placed_order_is_pending_with_no_prices_or_total_yet() {
    let order = replay(pending());
    assert!(order.exists());
    assert_eq!(order.order_id(), Some(ORDER));
    assert_eq!(order.customer_id(), Some(CUSTOMER));
    assert_eq!(order.status(), Some(OrderStatus::Pending));
    let lines: Vec<_> = order
        .lines()
        .iter()
        .map(|line| (line.sku.as_str(), line.quantity, line.unit_price))
        .collect();
    assert_eq!(lines, [("MUG-1", 2, None), ("TEA-2", 1, None)]);
    assert_eq!(order.total(), None);
    assert_eq!(order.reason(), None);
    assert!(!order.is_stock_reserved());
}

#[test]
fn placing_an_order_twice_fails_as_already_placed() {
    for history in [pending(), confirmed(), out_of_stock()] {
        order()
            .given(history)
            .when(place(&[("MUG-1", 2)]))
            .then_expect_error(OrderError::AlreadyPlaced);
    }
}

#[test]
fn every_other_command_on_a_missing_order_fails_as_not_found() {
    let commands = [
        reserve("MUG-1", 2, 1299),
        OrderCommand::RecordStockRejected {
            sku: sku("MUG-1"),
            reason: OrderRejectionReason::OutOfStock,
        },
        OrderCommand::RecordPaymentAuthorized { amount_cents: 1 },
        OrderCommand::RecordPaymentDeclined {
            reason: OrderRejectionReason::InsufficientCredit,
        },
        cancel(),
        OrderCommand::Ship,
    ];
    for command in commands {
        order()
            .given_no_previous_events()
            .when(command)
            .then_expect_error(OrderError::NotFound);
    }
}

#[test]
fn the_state_survives_a_json_round_trip() {
    let order = replay(partly_reserved());
    let json = serde_json::to_value(&order).unwrap();
    assert_eq!(json["status"], "PENDING");
    assert_eq!(json["lines"][0]["unit_price"], 1299);
    assert_eq!(json["lines"][1]["unit_price"], serde_json::Value::Null);
    assert_eq!(serde_json::from_value::<Order>(json).unwrap(), order);
}

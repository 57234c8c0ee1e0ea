use super::*;

#[test]
fn adding_a_new_product_records_it() {
    product()
        .given_no_previous_events()
        .when(add_product(1299, 10))
        .then_expect_events(vec![added(10)]);
}

#[test]
fn adding_a_product_with_no_stock_or_the_most_initial_stock_is_allowed() {
    product()
        .given_no_previous_events()
        .when(add_product(1299, 0))
        .then_expect_events(vec![added(0)]);
    product()
        .given_no_previous_events()
        .when(add_product(1299, 1_000_000))
        .then_expect_events(vec![added(1_000_000)]);
}

#[test]
fn adding_a_product_twice_fails_as_already_exists() {
    product()
        .given(vec![added(10)])
        .when(add_product(1299, 10))
        .then_expect_error(ProductError::AlreadyExists);
}

#[test]
fn adding_a_product_priced_at_zero_fails() {
    product()
        .given_no_previous_events()
        .when(add_product(0, 10))
        .then_expect_error(ProductError::PriceMustBePositive);
}

#[test]
fn adding_more_than_a_million_initial_units_exceeds_the_stock_limit() {
    product()
        .given_no_previous_events()
        .when(add_product(1299, 1_000_001))
        .then_expect_error(ProductError::StockLimitExceeded);
}

#[test]
fn restocking_or_repricing_a_missing_product_fails_as_not_found() {
    let commands = [
        ProductCommand::Restock {
            quantity: quantity(1),
        },
        ProductCommand::ChangePrice { price: money(100) },
    ];
    for command in commands {
        product()
            .given_no_previous_events()
            .when(command)
            .then_expect_error(ProductError::NotFound);
    }
}

#[test]
fn reserving_a_missing_product_is_rejected_as_unknown_with_nothing_available() {
    product()
        .given_no_previous_events()
        .when(reserve(ORDER, 3))
        .then_expect_events(vec![unknown(ORDER, 3)]);
}

#[test]
fn reserving_a_missing_product_again_for_the_same_order_records_nothing() {
    product()
        .given(vec![unknown(ORDER, 3)])
        .when(reserve(ORDER, 3))
        .then_expect_events(vec![]);
}

#[test]
fn releasing_or_committing_on_a_missing_product_records_nothing() {
    for history in [vec![], vec![unknown(ORDER, 3)]] {
        for command in [
            ProductCommand::ReleaseReservation { order_id: ORDER },
            ProductCommand::CommitReservation { order_id: ORDER },
        ] {
            product()
                .given(history.clone())
                .when(command)
                .then_expect_events(vec![]);
        }
    }
}

#[test]
fn a_product_rejected_as_unknown_can_still_be_added_later() {
    product()
        .given(vec![unknown(ORDER, 3)])
        .when(add_product(1299, 10))
        .then_expect_events(vec![added(10)]);
    let product = replay(vec![unknown(ORDER, 3)]);
    assert!(!product.exists());
    assert_eq!(product.available(), 0);
    assert_eq!(
        product.reservation(ORDER).map(|r| r.status),
        Some(ReservationStatus::Rejected)
    );
}

#[test]
fn restocking_adds_to_the_stock_on_hand() {
    product()
        .given(vec![added(10)])
        .when(ProductCommand::Restock {
            quantity: quantity(5),
        })
        .then_expect_events(vec![ProductEvent::Restocked { quantity: 5 }]);
    let product = replay(vec![added(10), ProductEvent::Restocked { quantity: 5 }]);
    assert_eq!(product.on_hand(), 15);
    assert_eq!(product.available(), 15);
}

#[test]
fn restocking_up_to_a_billion_units_is_allowed_but_not_past_it() {
    let nearly_full = vec![
        added(1_000_000),
        ProductEvent::Restocked {
            quantity: 998_999_999,
        },
    ];
    product()
        .given(nearly_full.clone())
        .when(ProductCommand::Restock {
            quantity: quantity(1),
        })
        .then_expect_events(vec![ProductEvent::Restocked { quantity: 1 }]);
    product()
        .given(nearly_full)
        .when(ProductCommand::Restock {
            quantity: quantity(2),
        })
        .then_expect_error(ProductError::StockLimitExceeded);
}

#[test]
fn changing_the_price_records_the_new_price() {
    product()
        .given(vec![added(10)])
        .when(ProductCommand::ChangePrice { price: money(999) })
        .then_expect_events(vec![ProductEvent::PriceChanged { price_cents: 999 }]);
    let product = replay(vec![
        added(10),
        ProductEvent::PriceChanged { price_cents: 999 },
    ]);
    assert_eq!(product.price(), money(999));
}

#[test]
fn changing_to_the_current_price_records_nothing() {
    product()
        .given(vec![added(10)])
        .when(ProductCommand::ChangePrice { price: money(1299) })
        .then_expect_events(vec![]);
}

#[test]
fn changing_the_price_to_zero_fails() {
    product()
        .given(vec![added(10)])
        .when(ProductCommand::ChangePrice { price: money(0) })
        .then_expect_error(ProductError::PriceMustBePositive);
}

#[test]
fn the_state_survives_a_json_round_trip() {
    let product = replay(vec![
        added(10),
        reserved(ORDER, 4),
        rejected(OTHER_ORDER, 9, 6),
    ]);
    let json = serde_json::to_value(&product).unwrap();
    assert_eq!(
        json["reservations"][ORDER.to_string()]["status"],
        "Reserved"
    );
    assert_eq!(serde_json::from_value::<Product>(json).unwrap(), product);
}

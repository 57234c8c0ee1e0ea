use super::*;

#[test]
fn reserving_available_stock_holds_it_at_the_current_price() {
    product()
        .given(vec![
            added(10),
            ProductEvent::PriceChanged { price_cents: 1299 },
        ])
        .when(reserve(ORDER, 10))
        .then_expect_events(vec![reserved(ORDER, 10)]);
    let product = replay(vec![added(10), reserved(ORDER, 4)]);
    assert_eq!((product.on_hand(), product.reserved()), (10, 4));
    assert_eq!(product.available(), 6);
}

#[test]
fn reserving_more_than_available_is_rejected_with_the_available_amount() {
    product()
        .given(vec![added(10), reserved(OTHER_ORDER, 7)])
        .when(reserve(ORDER, 4))
        .then_expect_events(vec![rejected(ORDER, 4, 3)]);
    let product = replay(vec![
        added(10),
        reserved(OTHER_ORDER, 7),
        rejected(ORDER, 4, 3),
    ]);
    assert_eq!(product.reserved(), 7);
    assert_eq!(
        product.reservation(ORDER).map(|r| r.status),
        Some(ReservationStatus::Rejected)
    );
}

#[test]
fn reserving_twice_for_the_same_order_reserves_once() {
    product()
        .given(vec![added(10), reserved(ORDER, 2)])
        .when(reserve(ORDER, 2))
        .then_expect_events(vec![]);
}

#[test]
fn reserving_again_for_an_answered_order_records_nothing() {
    let released = ProductEvent::ReservationReleased {
        order_id: ORDER,
        quantity: 2,
    };
    let committed = ProductEvent::ReservationCommitted {
        order_id: ORDER,
        quantity: 2,
    };
    for history in [
        vec![added(10), rejected(ORDER, 20, 10)],
        vec![added(10), reserved(ORDER, 2), released],
        vec![added(10), reserved(ORDER, 2), committed],
    ] {
        product()
            .given(history)
            .when(reserve(ORDER, 2))
            .then_expect_events(vec![]);
    }
}

#[test]
fn releasing_a_reservation_gives_its_units_back() {
    let released = ProductEvent::ReservationReleased {
        order_id: ORDER,
        quantity: 4,
    };
    product()
        .given(vec![added(10), reserved(ORDER, 4)])
        .when(ProductCommand::ReleaseReservation { order_id: ORDER })
        .then_expect_events(vec![released.clone()]);
    let product = replay(vec![added(10), reserved(ORDER, 4), released]);
    assert_eq!((product.on_hand(), product.reserved()), (10, 0));
}

#[test]
fn releasing_twice_records_nothing_the_second_time() {
    product()
        .given(vec![
            added(10),
            reserved(ORDER, 4),
            ProductEvent::ReservationReleased {
                order_id: ORDER,
                quantity: 4,
            },
        ])
        .when(ProductCommand::ReleaseReservation { order_id: ORDER })
        .then_expect_events(vec![]);
}

#[test]
fn releasing_an_unknown_or_rejected_reservation_records_nothing() {
    for history in [vec![added(10)], vec![added(10), rejected(ORDER, 20, 10)]] {
        product()
            .given(history)
            .when(ProductCommand::ReleaseReservation { order_id: ORDER })
            .then_expect_events(vec![]);
    }
}

#[test]
fn committing_a_reservation_ships_its_units() {
    let committed = ProductEvent::ReservationCommitted {
        order_id: ORDER,
        quantity: 4,
    };
    product()
        .given(vec![
            added(10),
            reserved(ORDER, 4),
            reserved(OTHER_ORDER, 1),
        ])
        .when(ProductCommand::CommitReservation { order_id: ORDER })
        .then_expect_events(vec![committed.clone()]);
    let product = replay(vec![
        added(10),
        reserved(ORDER, 4),
        reserved(OTHER_ORDER, 1),
        committed,
    ]);
    assert_eq!((product.on_hand(), product.reserved()), (6, 1));
    assert_eq!(product.available(), 5);
}

#[test]
fn committing_twice_records_nothing_the_second_time() {
    product()
        .given(vec![
            added(10),
            reserved(ORDER, 4),
            ProductEvent::ReservationCommitted {
                order_id: ORDER,
                quantity: 4,
            },
        ])
        .when(ProductCommand::CommitReservation { order_id: ORDER })
        .then_expect_events(vec![]);
}

#[test]
fn committing_a_reservation_that_is_not_held_fails_as_not_found() {
    let released = ProductEvent::ReservationReleased {
        order_id: ORDER,
        quantity: 4,
    };
    for history in [
        vec![added(10)],
        vec![added(10), rejected(ORDER, 20, 10)],
        vec![added(10), reserved(ORDER, 4), released],
    ] {
        product()
            .given(history)
            .when(ProductCommand::CommitReservation { order_id: ORDER })
            .then_expect_error(ProductError::ReservationNotFound { order_id: ORDER });
    }
}

#[test]
fn releasing_shipped_units_is_refused_by_an_event_once() {
    let committed = ProductEvent::ReservationCommitted {
        order_id: ORDER,
        quantity: 3,
    };
    let refused = ProductEvent::ReservationReleaseRefused {
        order_id: ORDER,
        quantity: 3,
        error: "MUG-1: the 3 units held for the order were already shipped".into(),
    };
    product()
        .given(vec![added(10), reserved(ORDER, 3), committed.clone()])
        .when(ProductCommand::ReleaseReservation { order_id: ORDER })
        .then_expect_events(vec![refused.clone()]);
    product()
        .given(vec![
            added(10),
            reserved(ORDER, 3),
            committed.clone(),
            refused.clone(),
        ])
        .when(ProductCommand::ReleaseReservation { order_id: ORDER })
        .then_expect_events(vec![]);
    let product = replay(vec![added(10), reserved(ORDER, 3), committed, refused]);
    assert_eq!((product.on_hand(), product.reserved()), (7, 0));
}

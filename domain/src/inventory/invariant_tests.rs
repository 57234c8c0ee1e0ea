use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::runtime::Runtime;
use uuid::Uuid;

use super::*;
use crate::values::{Money, ProductName, Quantity, Sku};

const ORDERS: [Uuid; 4] = [
    Uuid::from_u128(1),
    Uuid::from_u128(2),
    Uuid::from_u128(3),
    Uuid::from_u128(4),
];

fn order_id() -> impl Strategy<Value = Uuid> {
    prop::sample::select(ORDERS.to_vec())
}

fn quantity(max: u32) -> impl Strategy<Value = Quantity> {
    (1..=max).prop_map(|units| Quantity::new(units).unwrap())
}

fn stock_command() -> impl Strategy<Value = ProductCommand> {
    prop_oneof![
        quantity(40).prop_map(|quantity| ProductCommand::Restock { quantity }),
        (order_id(), quantity(30))
            .prop_map(|(order_id, quantity)| ProductCommand::ReserveStock { order_id, quantity }),
        order_id().prop_map(|order_id| ProductCommand::ReleaseReservation { order_id }),
        order_id().prop_map(|order_id| ProductCommand::CommitReservation { order_id }),
    ]
}

/// Runs `handle` on a copy, as the framework does on a freshly loaded aggregate, and
/// returns the copy's state along with what was recorded.
fn handle(
    runtime: &Runtime,
    product: &Product,
    command: ProductCommand,
) -> (Product, Result<Vec<ProductEvent>, ProductError>) {
    let mut handled = product.clone();
    let sink = EventSink::default();
    let result = runtime.block_on(async {
        handled.handle(command, &(), &sink).await?;
        Ok(sink.collect().await)
    });
    (handled, result)
}

fn check_stock_invariants(product: &Product) -> Result<(), TestCaseError> {
    prop_assert!(product.reserved() <= product.on_hand());
    let held: u64 = ORDERS
        .iter()
        .filter_map(|order_id| product.reservation(*order_id))
        .filter(|reservation| reservation.status == ReservationStatus::Reserved)
        .map(|reservation| reservation.quantity)
        .sum();
    prop_assert_eq!(product.reserved(), held);
    prop_assert_eq!(
        Some(product.available()),
        product.on_hand().checked_sub(product.reserved())
    );
    Ok(())
}

proptest! {
    #[test]
    fn stock_invariants_hold_after_every_command(
        initial_stock in 0..=50u32,
        commands in prop::collection::vec(stock_command(), 1..60),
        added_after in prop_oneof![3 => Just(0usize), 1 => 0..70usize],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let add = ProductCommand::AddProduct {
            sku: Sku::parse("MUG-1").unwrap(),
            name: ProductName::parse("Blue mug").unwrap(),
            price: Money::from_cents(1299).unwrap(),
            initial_stock,
        };
        // The product is usually added first, but the saga may ask about it before it
        // exists, or about a SKU that never will.
        let mut commands = commands;
        if added_after <= commands.len() {
            commands.insert(added_after, add);
        }
        let mut product = Product::default();
        let mut history = Vec::new();
        for command in commands {
            let existed = product.exists();
            let (handled, result) = handle(&runtime, &product, command);
            match result {
                Ok(events) => {
                    for event in events {
                        product.apply(event.clone());
                        history.push(event);
                    }
                    prop_assert_eq!(&handled, &product);
                }
                Err(error) => {
                    let expected = match error {
                        ProductError::ReservationNotFound { .. } => existed,
                        ProductError::NotFound => !existed,
                        _ => false,
                    };
                    prop_assert!(expected, "unexpected error {:?}", error);
                    prop_assert_eq!(&handled, &product);
                }
            }
            if !product.exists() {
                prop_assert_eq!((product.on_hand(), product.reserved()), (0, 0));
            }
            check_stock_invariants(&product)?;
        }
        let mut replayed = Product::default();
        for event in history {
            replayed.apply(event);
        }
        prop_assert_eq!(replayed, product);
    }
}

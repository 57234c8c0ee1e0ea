use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::runtime::Runtime;
use uuid::Uuid;

use super::*;
use crate::values::{LineQuantity, Money, OrderLine, OrderLines, Sku};

const SKUS: [&str; 5] = ["MUG-1", "TEA-2", "LAMP-3", "PEN-4", "CUP-5"];

/// One saga answer or user command, resolved against the order when it runs so that
/// most answers match what inventory and payments would really send.
#[derive(Debug, Clone)]
enum Step {
    StockReserved {
        sku: usize,
        ordered_units: bool,
        unit_price_cents: i64,
    },
    StockRejected {
        sku: usize,
        reason: OrderRejectionReason,
    },
    PaymentAuthorized {
        for_the_total: bool,
    },
    PaymentDeclined {
        reason: OrderRejectionReason,
    },
    Cancel,
    Ship,
}

fn reason() -> impl Strategy<Value = OrderRejectionReason> {
    prop::sample::select(vec![
        OrderRejectionReason::OutOfStock,
        OrderRejectionReason::UnknownProduct,
        OrderRejectionReason::InsufficientCredit,
        OrderRejectionReason::UnknownCustomer,
        OrderRejectionReason::CustomerInactive,
    ])
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..SKUS.len(), prop::bool::weighted(0.9), 0..=10_000i64).prop_map(
            |(sku, ordered_units, unit_price_cents)| Step::StockReserved {
                sku,
                ordered_units,
                unit_price_cents,
            }
        ),
        1 => (0..SKUS.len(), reason()).prop_map(|(sku, reason)| Step::StockRejected { sku, reason }),
        2 => prop::bool::weighted(0.9).prop_map(|for_the_total| Step::PaymentAuthorized { for_the_total }),
        1 => reason().prop_map(|reason| Step::PaymentDeclined { reason }),
        1 => Just(Step::Cancel),
        2 => Just(Step::Ship),
    ]
}

fn order_lines() -> impl Strategy<Value = OrderLines> {
    (prop::sample::subsequence(SKUS.to_vec(), 1..=4), 1..=5u32).prop_map(|(skus, units)| {
        let lines = skus
            .into_iter()
            .map(|sku| OrderLine {
                sku: Sku::parse(sku).unwrap(),
                quantity: LineQuantity::new(units).unwrap(),
            })
            .collect();
        OrderLines::new(lines).unwrap()
    })
}

fn command(order: &Order, step: Step) -> OrderCommand {
    match step {
        Step::StockReserved {
            sku,
            ordered_units,
            unit_price_cents,
        } => {
            let ordered = order.lines().iter().find(|line| line.sku == SKUS[sku]);
            let quantity = match ordered {
                Some(line) if ordered_units => line.quantity,
                _ => 7,
            };
            OrderCommand::RecordStockReserved {
                sku: Sku::parse(SKUS[sku]).unwrap(),
                quantity,
                unit_price_cents,
            }
        }
        Step::StockRejected { sku, reason } => OrderCommand::RecordStockRejected {
            sku: Sku::parse(SKUS[sku]).unwrap(),
            reason,
        },
        Step::PaymentAuthorized { for_the_total } => {
            let total = order.total().map_or(0, Money::cents);
            OrderCommand::RecordPaymentAuthorized {
                amount_cents: if for_the_total { total } else { total + 1 },
            }
        }
        Step::PaymentDeclined { reason } => OrderCommand::RecordPaymentDeclined { reason },
        Step::Cancel => OrderCommand::Cancel { reason: None },
        Step::Ship => OrderCommand::Ship,
    }
}

/// Runs `handle` on a copy, as the framework does on a freshly loaded aggregate, and
/// returns the copy's state along with what was recorded.
fn handle(
    runtime: &Runtime,
    order: &Order,
    command: OrderCommand,
) -> (Order, Result<Vec<OrderEvent>, OrderError>) {
    let mut handled = order.clone();
    let sink = EventSink::default();
    let result = runtime.block_on(async {
        handled.handle(command, &(), &sink).await?;
        Ok(sink.collect().await)
    });
    (handled, result)
}

fn is_allowed_move(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    from == to
        || matches!(
            (from, to),
            (Pending, Confirmed | Rejected | Cancelled) | (Confirmed, Shipped | Cancelled)
        )
}

fn check_order_invariants(order: &Order) -> Result<(), TestCaseError> {
    let status = order.status().expect("the order was placed first");
    let priced: Option<Vec<(Money, u64)>> = order
        .lines()
        .iter()
        .map(|line| line.unit_price.map(|price| (price, line.quantity)))
        .collect();
    if matches!(status, OrderStatus::Confirmed | OrderStatus::Shipped) {
        prop_assert!(
            order.is_stock_reserved(),
            "{:?} with lines unreserved",
            status
        );
        prop_assert!(order.total().is_some());
    }
    if let Some(total) = order.total() {
        let priced = priced.unwrap_or_default();
        let sum: i64 = priced
            .iter()
            .map(|(price, units)| price.cents() * i64::try_from(*units).unwrap())
            .sum();
        prop_assert_eq!(priced.len(), order.lines().len());
        prop_assert_eq!(total.cents(), sum);
    }
    prop_assert_eq!(status == OrderStatus::Rejected, order.reason().is_some());
    Ok(())
}

proptest! {
    #[test]
    fn an_order_never_confirms_unreserved_stock_or_leaves_a_final_status(
        lines in order_lines(),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let place = OrderCommand::PlaceOrder {
            order_id: Uuid::from_u128(1),
            customer_id: Uuid::from_u128(2),
            lines,
        };
        let (mut order, placed) = handle(&runtime, &Order::default(), place);
        let mut history = placed.unwrap();
        for step in steps {
            let before = order.status().expect("the order was placed first");
            let (handled, result) = handle(&runtime, &order, command(&order, step));
            match result {
                Ok(events) => {
                    for event in events {
                        order.apply(event.clone());
                        history.push(event);
                    }
                }
                Err(OrderError::CannotCancel { status }) => {
                    prop_assert_eq!(status, before);
                    prop_assert!(before.is_final());
                }
                Err(OrderError::CannotShip { status }) => {
                    prop_assert_eq!(status, before);
                    prop_assert_ne!(before, OrderStatus::Confirmed);
                }
                Err(OrderError::QuantityMismatch { .. } | OrderError::PaymentAmountMismatch { .. }) => {}
                Err(error) => prop_assert!(false, "unexpected error {:?}", error),
            }
            prop_assert_eq!(&handled, &order);
            let after = order.status().expect("the order was placed first");
            prop_assert!(is_allowed_move(before, after), "{:?} became {:?}", before, after);
            check_order_invariants(&order)?;
        }
        let mut replayed = Order::default();
        for event in history {
            replayed.apply(event);
        }
        prop_assert_eq!(replayed, order);
    }
}

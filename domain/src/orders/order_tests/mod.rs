//! Given/when/then tests of the order aggregate, with the helpers they share. The usual
//! order has two lines: 2 × MUG-1 at 12.99 and 1 × TEA-2 at 4.50, 30.48 in all.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::*;
use crate::values::{LineQuantity, Money, OrderLine, OrderLines, Sku};

type OrderTest = TestFramework<Order>;

const ORDER: Uuid = Uuid::from_u128(1);
const CUSTOMER: Uuid = Uuid::from_u128(2);
const TOTAL: i64 = 2 * 1299 + 450;

fn order() -> OrderTest {
    TestFramework::with(())
}

fn sku(raw: &str) -> Sku {
    Sku::parse(raw).unwrap()
}

fn place(lines: &[(&str, u32)]) -> OrderCommand {
    let lines = lines
        .iter()
        .map(|(raw, units)| OrderLine {
            sku: sku(raw),
            quantity: LineQuantity::new(*units).unwrap(),
        })
        .collect();
    OrderCommand::PlaceOrder {
        order_id: ORDER,
        customer_id: CUSTOMER,
        lines: OrderLines::new(lines).unwrap(),
    }
}

fn placed(lines: &[(&str, u64)]) -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id: ORDER,
        customer_id: CUSTOMER,
        lines: lines
            .iter()
            .map(|(sku, quantity)| PlacedLine {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
    }
}

fn reserve(raw: &str, quantity: u64, unit_price_cents: i64) -> OrderCommand {
    OrderCommand::RecordStockReserved {
        sku: sku(raw),
        quantity,
        unit_price_cents,
    }
}

fn line_reserved(sku: &str, quantity: u64, unit_price_cents: i64) -> OrderEvent {
    OrderEvent::OrderLineReserved {
        sku: sku.into(),
        quantity,
        unit_price_cents,
    }
}

fn stock_reserved(total_cents: i64) -> OrderEvent {
    OrderEvent::OrderStockReserved {
        customer_id: CUSTOMER,
        total_cents,
    }
}

fn rejected(reason: OrderRejectionReason) -> OrderEvent {
    OrderEvent::OrderRejected { reason }
}

fn cancelled(cancelled_from: OrderStatus) -> OrderEvent {
    OrderEvent::OrderCancelled {
        reason: Some("changed my mind".into()),
        cancelled_from,
    }
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel {
        reason: Some("changed my mind".into()),
    }
}

/// The usual order, placed and waiting for inventory.
fn pending() -> Vec<OrderEvent> {
    vec![placed(&[("MUG-1", 2), ("TEA-2", 1)])]
}

/// The usual order with its mugs held but not its tea.
fn partly_reserved() -> Vec<OrderEvent> {
    let mut events = pending();
    events.push(line_reserved("MUG-1", 2, 1299));
    events
}

/// The usual order with every line held, waiting for payment.
fn fully_reserved() -> Vec<OrderEvent> {
    let mut events = partly_reserved();
    events.extend([line_reserved("TEA-2", 1, 450), stock_reserved(TOTAL)]);
    events
}

fn confirmed() -> Vec<OrderEvent> {
    let mut events = fully_reserved();
    events.push(OrderEvent::OrderConfirmed { total_cents: TOTAL });
    events
}

fn out_of_stock() -> Vec<OrderEvent> {
    let mut events = pending();
    events.push(rejected(OrderRejectionReason::OutOfStock));
    events
}

fn cancelled_while_pending() -> Vec<OrderEvent> {
    let mut events = pending();
    events.push(cancelled(OrderStatus::Pending));
    events
}

fn shipped() -> Vec<OrderEvent> {
    let mut events = confirmed();
    events.push(OrderEvent::OrderShipped {});
    events
}

fn replay(events: Vec<OrderEvent>) -> Order {
    let mut order = Order::default();
    for event in events {
        order.apply(event);
    }
    order
}

mod compensation;
mod payment;
mod placing;
mod stock;
mod user;

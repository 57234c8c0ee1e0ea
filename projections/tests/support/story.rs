//! Histories of customers, orders and payments as their relays would publish them.

use std::collections::HashMap;

use domain::customers::CustomerEvent;
use domain::orders::{OrderEvent, OrderRejectionReason, OrderStatus, PlacedLine};
use domain::payments::{DeclineReason, PaymentEvent};
use domain::versioning::VersionedEvent;
use platform::Envelope;
use uuid::Uuid;

/// Events of several services in the order they happened, each stamped with a
/// time derived from that order, so that every replay sees the same data.
#[derive(Default)]
pub struct History {
    pub envelopes: Vec<Envelope>,
    positions: HashMap<&'static str, i64>,
    sequences: HashMap<String, i64>,
}

impl History {
    pub fn customer(&mut self, id: Uuid, event: CustomerEvent) -> &Envelope {
        self.record("customers", "Customer", id, &event)
    }

    pub fn order(&mut self, id: Uuid, event: OrderEvent) -> &Envelope {
        self.record("orders", "Order", id, &event)
    }

    pub fn payment(&mut self, order_id: Uuid, event: PaymentEvent) -> &Envelope {
        self.record("payments", "Payment", order_id, &event)
    }

    /// The events of one service, in order.
    pub fn of(&self, service: &str) -> Vec<Envelope> {
        let of_service = |e: &&Envelope| e.service == service;
        self.envelopes.iter().filter(of_service).cloned().collect()
    }

    fn record<E: VersionedEvent>(
        &mut self,
        service: &'static str,
        aggregate_type: &str,
        id: Uuid,
        event: &E,
    ) -> &Envelope {
        let tagged = serde_json::to_value(event).unwrap();
        let (event_type, payload) = tagged.as_object().unwrap().iter().next().unwrap();
        // A payment's id is its order's id, so sequences are per type and id.
        let sequence = self
            .sequences
            .entry(format!("{aggregate_type}:{id}"))
            .or_default();
        *sequence += 1;
        let position = self.positions.entry(service).or_default();
        *position += 1;
        let tick = self.envelopes.len() as i64;
        let aggregate_id = id.to_string();
        self.envelopes.push(Envelope {
            event_id: Envelope::event_id_for(service, aggregate_type, &aggregate_id, *sequence),
            service: service.into(),
            aggregate_type: aggregate_type.into(),
            aggregate_id,
            sequence: *sequence,
            global_position: *position,
            event_type: event_type.clone(),
            event_version: E::current_version(event_type).into(),
            payload: payload.clone(),
            metadata: [
                ("correlation_id".to_owned(), format!("request-{tick}")),
                ("causation_id".to_owned(), format!("request-{tick}")),
            ]
            .into(),
            recorded_at: chrono::DateTime::from_timestamp(1_800_000_000 + tick, 0).unwrap(),
        });
        self.envelopes.last().unwrap()
    }
}

/// A shop's history: Ada with six orders that end every way an order can end, and
/// Bob, who was deactivated without ordering.
pub struct Story {
    pub history: History,
    pub ada: Uuid,
    pub bob: Uuid,
    /// 2 MUG-1 at 1000 and 1 TEA-7 at 450: confirmed, paid and shipped.
    pub shipped: Uuid,
    /// 50 TEA-7: out of stock.
    pub rejected: Uuid,
    /// 3 MUG-1 at 1000: confirmed, then cancelled and its payment voided.
    pub cancelled: Uuid,
    /// 200 MUG-1 at 1000: more than Ada's credit.
    pub declined: Uuid,
    /// 1 MUG-1 at 1000: confirmed and authorized.
    pub confirmed: Uuid,
    /// 2 TEA-7: nothing happened to it yet.
    pub pending: Uuid,
}

pub fn placed(customer_id: Uuid, order_id: Uuid, lines: &[(&str, u64)]) -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id,
        customer_id,
        lines: lines
            .iter()
            .map(|(sku, quantity)| PlacedLine {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
    }
}

pub fn registered(customer_id: Uuid, name: &str, credit_limit_cents: i64) -> CustomerEvent {
    CustomerEvent::CustomerRegistered {
        customer_id,
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        credit_limit_cents,
    }
}

/// Reserves every line at its price and authorizes the total; the order is confirmed.
pub fn confirm(
    history: &mut History,
    customer_id: Uuid,
    order_id: Uuid,
    lines: &[(&str, u64, i64)],
) {
    let mut total_cents = 0;
    for (sku, quantity, unit_price_cents) in lines {
        total_cents += *quantity as i64 * unit_price_cents;
        let reserved = OrderEvent::OrderLineReserved {
            sku: (*sku).into(),
            quantity: *quantity,
            unit_price_cents: *unit_price_cents,
        };
        history.order(order_id, reserved);
    }
    history.order(
        order_id,
        OrderEvent::OrderStockReserved {
            customer_id,
            total_cents,
        },
    );
    let authorized = PaymentEvent::PaymentAuthorized {
        order_id,
        customer_id,
        amount_cents: total_cents,
    };
    history.payment(order_id, authorized);
    history.order(order_id, OrderEvent::OrderConfirmed { total_cents });
}

pub fn story() -> Story {
    let mut history = History::default();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let [shipped, rejected, cancelled, declined, confirmed, pending] =
        std::array::from_fn(|_| Uuid::now_v7());
    history.customer(ada, registered(ada, "Ada", 100_000));
    history.customer(bob, registered(bob, "Bob", 20_000));
    let raised = CustomerEvent::CreditLimitChanged {
        credit_limit_cents: 150_000,
    };
    history.customer(ada, raised);

    history.order(shipped, placed(ada, shipped, &[("MUG-1", 2), ("TEA-7", 1)]));
    let lines = [("MUG-1", 2, 1000), ("TEA-7", 1, 450)];
    confirm(&mut history, ada, shipped, &lines);
    history.order(shipped, OrderEvent::OrderShipped {});
    let captured = PaymentEvent::PaymentCaptured { amount_cents: 2450 };
    history.payment(shipped, captured);

    history.order(rejected, placed(ada, rejected, &[("TEA-7", 50)]));
    let reason = OrderRejectionReason::OutOfStock;
    history.order(rejected, OrderEvent::OrderRejected { reason });

    history.order(cancelled, placed(ada, cancelled, &[("MUG-1", 3)]));
    confirm(&mut history, ada, cancelled, &[("MUG-1", 3, 1000)]);
    let cancel = OrderEvent::OrderCancelled {
        reason: Some("changed my mind".into()),
        cancelled_from: OrderStatus::Confirmed,
    };
    history.order(cancelled, cancel);
    let voided = PaymentEvent::PaymentVoided { amount_cents: 3000 };
    history.payment(cancelled, voided);

    history.customer(bob, CustomerEvent::CustomerDeactivated {});
    decline(&mut history, ada, declined, ("MUG-1", 200, 1000));

    history.order(confirmed, placed(ada, confirmed, &[("MUG-1", 1)]));
    confirm(&mut history, ada, confirmed, &[("MUG-1", 1, 1000)]);

    history.order(pending, placed(ada, pending, &[("TEA-7", 2)]));
    #[rustfmt::skip]
    let story = Story { history, ada, bob, shipped, rejected, cancelled, declined, confirmed, pending };
    story
}

/// Places a one-line order and reserves it, but its total is over the credit.
fn decline(history: &mut History, customer_id: Uuid, order_id: Uuid, line: (&str, u64, i64)) {
    let (sku, quantity, unit_price_cents) = line;
    history.order(order_id, placed(customer_id, order_id, &[(sku, quantity)]));
    let reserved = OrderEvent::OrderLineReserved {
        sku: sku.into(),
        quantity,
        unit_price_cents,
    };
    history.order(order_id, reserved);
    let total_cents = quantity as i64 * unit_price_cents;
    let stock_reserved = OrderEvent::OrderStockReserved {
        customer_id,
        total_cents,
    };
    history.order(order_id, stock_reserved);
    let declined = PaymentEvent::PaymentDeclined {
        order_id,
        customer_id,
        amount_cents: total_cents,
        reason: DeclineReason::InsufficientCredit,
    };
    history.payment(order_id, declined);
    let reason = OrderRejectionReason::InsufficientCredit;
    history.order(order_id, OrderEvent::OrderRejected { reason });
}

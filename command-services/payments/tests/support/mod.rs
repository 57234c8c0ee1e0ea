//! Test support: customer and order events as their services' relays publish them,
//! and the payments service running against its own database and streams.
// Each test binary uses part of this module.
#![allow(dead_code)]

pub mod saga;

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Utc;
use domain::customers::CustomerEvent;
use domain::orders::{OrderEvent, OrderStatus, PlacedLine};
use domain::versioning::VersionedEvent;
use platform::Envelope;
use uuid::Uuid;

/// An Envelope as a relay makes it: the payload is the event's fields, without
/// the variant tag that the event store keeps.
fn envelope<E: VersionedEvent>(
    service: &str,
    aggregate_type: &str,
    aggregate_id: Uuid,
    sequence: i64,
    event: &E,
    correlation_id: &str,
) -> Envelope {
    static POSITION: AtomicI64 = AtomicI64::new(1);
    let tagged = serde_json::to_value(event).expect("serialize event");
    let (event_type, payload) = tagged
        .as_object()
        .and_then(|object| object.iter().next())
        .expect("an externally tagged event");
    let aggregate_id = aggregate_id.to_string();
    Envelope {
        event_id: Envelope::event_id_for(service, aggregate_type, &aggregate_id, sequence),
        service: service.into(),
        aggregate_type: aggregate_type.into(),
        aggregate_id,
        sequence,
        global_position: POSITION.fetch_add(1, Ordering::Relaxed),
        event_type: event_type.clone(),
        event_version: E::current_version(event_type).into(),
        payload: payload.clone(),
        metadata: [
            ("correlation_id".to_owned(), correlation_id.to_owned()),
            ("causation_id".to_owned(), correlation_id.to_owned()),
        ]
        .into(),
        recorded_at: Utc::now(),
    }
}

/// One customer's events, numbered in order.
pub struct Customer {
    /// The customer's id.
    pub id: Uuid,
    sequence: i64,
}

impl Customer {
    /// A customer with no events yet.
    pub fn new() -> Self {
        Self {
            id: Uuid::now_v7(),
            sequence: 0,
        }
    }

    fn next(&mut self, event: CustomerEvent) -> Envelope {
        self.sequence += 1;
        let correlation_id = format!("customer-request-{}", self.sequence);
        envelope(
            "customers",
            "Customer",
            self.id,
            self.sequence,
            &event,
            &correlation_id,
        )
    }

    /// `CustomerRegistered` with a credit limit.
    pub fn registered(&mut self, credit_limit_cents: i64) -> Envelope {
        self.next(CustomerEvent::CustomerRegistered {
            customer_id: self.id,
            name: "Ada Lovelace".into(),
            email: format!("{}@example.com", self.id.simple()),
            credit_limit_cents,
        })
    }

    /// `CreditLimitChanged`.
    pub fn limit_changed(&mut self, credit_limit_cents: i64) -> Envelope {
        self.next(CustomerEvent::CreditLimitChanged { credit_limit_cents })
    }

    /// `CustomerDeactivated`.
    pub fn deactivated(&mut self) -> Envelope {
        self.next(CustomerEvent::CustomerDeactivated {})
    }
}

/// One order's events, numbered in order, all under one correlation id as if
/// they came from the request that placed it.
pub struct Order {
    /// The order's id, also its payment's id.
    pub id: Uuid,
    /// The customer who ordered.
    pub customer_id: Uuid,
    /// The correlation id of every event of the order.
    pub correlation_id: String,
    sequence: i64,
}

impl Order {
    /// An order of `customer_id` with no events yet.
    pub fn new(customer_id: Uuid) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            customer_id,
            correlation_id: format!("place-order-{}", id.simple()),
            sequence: 0,
        }
    }

    fn next(&mut self, event: OrderEvent) -> Envelope {
        self.sequence += 1;
        envelope(
            "orders",
            "Order",
            self.id,
            self.sequence,
            &event,
            &self.correlation_id,
        )
    }

    /// `OrderPlaced` then `OrderStockReserved` with the total: what payments
    /// authorizes or declines.
    pub fn placed_with_total(&mut self, total_cents: i64) -> Vec<Envelope> {
        let placed = self.next(OrderEvent::OrderPlaced {
            order_id: self.id,
            customer_id: self.customer_id,
            lines: vec![PlacedLine {
                sku: "MUG-1".into(),
                quantity: 1,
            }],
        });
        let reserved = self.next(OrderEvent::OrderStockReserved {
            customer_id: self.customer_id,
            total_cents,
        });
        vec![placed, reserved]
    }

    /// `OrderConfirmed`, which payments passes over.
    pub fn confirmed(&mut self, total_cents: i64) -> Envelope {
        self.next(OrderEvent::OrderConfirmed { total_cents })
    }

    /// `OrderCancelled` from CONFIRMED.
    pub fn cancelled(&mut self) -> Envelope {
        self.next(OrderEvent::OrderCancelled {
            reason: Some("changed my mind".into()),
            cancelled_from: OrderStatus::Confirmed,
        })
    }

    /// `OrderShipped`.
    pub fn shipped(&mut self) -> Envelope {
        self.next(OrderEvent::OrderShipped {})
    }
}

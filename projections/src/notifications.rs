//! The `notifications` read model: a welcome for each new customer, and a message
//! for each outcome of a customer's order (confirmed, rejected, cancelled, shipped).
//!
//! Each notification is keyed by the event that caused it, and its id is derived
//! from that event, so a redelivery never sends it twice and a rebuild makes
//! identical rows.

use anyhow::Context;
use async_trait::async_trait;
use domain::customers::CustomerEvent;
use domain::orders::OrderEvent;
use platform::consumer::Handler;
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::{aggregate_uuid, decode, json_word};

/// Builds `notifications` from `Customer` and `Order` events, through one consumer
/// per stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationsProjection;

/// The durable name of the consumer of the customers stream.
pub const FROM_CUSTOMERS: &str = "notifications-from-customers";
/// The durable name of the consumer of the orders stream.
pub const FROM_ORDERS: &str = "notifications-from-orders";

/// The customer events that send a notification; the consumer of the customers
/// stream passes over the others without a transaction.
pub const CUSTOMER_EVENTS: &[&str] = &["CustomerRegistered"];
/// The order events that send a notification or name an order's customer; the
/// consumer of the orders stream passes over the saga's steps in between.
pub const ORDER_EVENTS: &[&str] = &[
    "OrderPlaced",
    "OrderConfirmed",
    "OrderRejected",
    "OrderCancelled",
    "OrderShipped",
];

/// A message to one customer, before it is stored.
#[derive(Debug, PartialEq, Eq)]
struct Notice {
    kind: &'static str,
    order_id: Option<Uuid>,
    message: String,
}

#[async_trait]
impl Handler for NotificationsProjection {
    fn name(&self) -> &str {
        "notifications"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        let id = aggregate_uuid(envelope)?;
        match envelope.aggregate_type.as_str() {
            "Customer" => match decode::<CustomerEvent>(envelope)? {
                CustomerEvent::CustomerRegistered { name, .. } => {
                    let welcome = Notice {
                        kind: "WELCOME",
                        order_id: None,
                        message: format!("Welcome to Shop, {name}!"),
                    };
                    insert(tx, envelope, id, welcome).await
                }
                _ => Ok(()),
            },
            "Order" => apply_order(tx, envelope, id, decode(envelope)?).await,
            other => anyhow::bail!("notifications are not built from {other} events"),
        }
    }
}

async fn apply_order(
    tx: &mut PgConnection,
    envelope: &Envelope,
    order_id: Uuid,
    event: OrderEvent,
) -> anyhow::Result<()> {
    if let OrderEvent::OrderPlaced { customer_id, .. } = event {
        return remember_customer(tx, order_id, customer_id).await;
    }
    let Some(notice) = order_notice(order_id, event)? else {
        return Ok(());
    };
    let customer_id = customer_of(tx, order_id).await?;
    insert(tx, envelope, customer_id, notice).await
}

/// What an order event tells its customer, if anything.
fn order_notice(order_id: Uuid, event: OrderEvent) -> anyhow::Result<Option<Notice>> {
    let (kind, message) = match event {
        OrderEvent::OrderConfirmed { total_cents } => (
            "ORDER_CONFIRMED",
            format!(
                "Your order {order_id} was confirmed; its total is {}.",
                money(total_cents)
            ),
        ),
        OrderEvent::OrderRejected { reason } => (
            "ORDER_REJECTED",
            format!(
                "Your order {order_id} was rejected: {}",
                json_word(&reason)?
            ),
        ),
        OrderEvent::OrderCancelled { reason, .. } => {
            let message = match reason.as_deref().map(str::trim) {
                Some(reason) if !reason.is_empty() => {
                    format!("Your order {order_id} was cancelled: {reason}")
                }
                _ => format!("Your order {order_id} was cancelled."),
            };
            ("ORDER_CANCELLED", message)
        }
        OrderEvent::OrderShipped {} => (
            "ORDER_SHIPPED",
            format!("Your order {order_id} has shipped."),
        ),
        _ => return Ok(None),
    };
    Ok(Some(Notice {
        kind,
        order_id: Some(order_id),
        message,
    }))
}

/// Cents as a decimal amount, such as `12.05`.
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// A UUIDv7 with the event's time and bits taken from its id: time-ordered like any
/// v7, and the same every time the event is applied.
fn notification_id(envelope: &Envelope) -> Uuid {
    let digest = sha1_smol::Sha1::from(envelope.event_id.as_bytes())
        .digest()
        .bytes();
    let mut bits = [0; 10];
    bits.copy_from_slice(&digest[..10]);
    // Events are recorded after 1970; an earlier time could only be a broken clock.
    let millis = u64::try_from(envelope.recorded_at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid()
}

async fn insert(
    tx: &mut PgConnection,
    envelope: &Envelope,
    customer_id: Uuid,
    notice: Notice,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO notifications
                (id, customer_id, kind, order_id, message, created_at, source_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (source_event_id) DO NOTHING",
    )
    .bind(notification_id(envelope))
    .bind(customer_id)
    .bind(notice.kind)
    .bind(notice.order_id)
    .bind(&notice.message)
    .bind(envelope.recorded_at)
    .bind(&envelope.event_id)
    .execute(tx)
    .await
    .with_context(|| format!("notify customer {customer_id} of {}", envelope.event_id))?;
    Ok(())
}

async fn remember_customer(
    tx: &mut PgConnection,
    order_id: Uuid,
    customer_id: Uuid,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO notification_orders (order_id, customer_id) VALUES ($1, $2)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(customer_id)
    .execute(tx)
    .await
    .with_context(|| format!("remember the customer of order {order_id}"))?;
    Ok(())
}

async fn customer_of(tx: &mut PgConnection, order_id: Uuid) -> anyhow::Result<Uuid> {
    let customer_id: Option<Uuid> =
        sqlx::query_scalar("SELECT customer_id FROM notification_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(tx)
            .await
            .with_context(|| format!("look up the customer of order {order_id}"))?;
    // OrderPlaced comes first on the order's own stream; without it the read
    // model lost an event, and retrying beats notifying nobody.
    customer_id.with_context(|| format!("order {order_id} has no known customer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::orders::OrderRejectionReason;

    #[test]
    fn a_rejection_notice_names_the_order_and_the_reason() {
        let order_id = Uuid::from_u128(7);
        let event = OrderEvent::OrderRejected {
            reason: OrderRejectionReason::OutOfStock,
        };
        let notice = order_notice(order_id, event).unwrap().unwrap();
        assert_eq!(notice.kind, "ORDER_REJECTED");
        assert_eq!(
            notice.message,
            format!("Your order {order_id} was rejected: OUT_OF_STOCK")
        );
    }

    #[test]
    fn reserving_stock_tells_the_customer_nothing() {
        let event = OrderEvent::OrderStockReserved {
            customer_id: Uuid::from_u128(1),
            total_cents: 100,
        };
        assert_eq!(order_notice(Uuid::from_u128(7), event).unwrap(), None);
    }

    #[test]
    fn money_is_written_with_two_decimals() {
        assert_eq!(money(1205), "12.05");
        assert_eq!(money(7), "0.07");
        assert_eq!(money(-150), "-1.50");
    }
}

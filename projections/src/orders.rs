//! The `orders` read model: one row per order with its status, total and rejection
//! reason, and its lines in `order_lines` with their unit prices once reserved.

use anyhow::Context;
use async_trait::async_trait;
use domain::orders::{OrderEvent, OrderStatus, PlacedLine};
use platform::consumer::Handler;
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::{aggregate_uuid, decode, json_word};

mod fold;

/// Builds `orders` and `order_lines` from the orders service's `Order` events.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersProjection;

/// The JetStream durable name, also the key of this projection's checkpoints.
pub const DURABLE_NAME: &str = "orders";

/// What an event after `OrderPlaced` does to the order's row; `None` keeps a column.
#[derive(Debug, Default, PartialEq, Eq)]
struct Change {
    status: Option<OrderStatus>,
    total_cents: Option<i64>,
    reason: Option<String>,
    /// `{step, error}` of a refused compensation; `at` is the event's time.
    operator_needed: Option<serde_json::Value>,
}

#[async_trait]
impl Handler for OrdersProjection {
    fn name(&self) -> &str {
        "orders"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        let order_id = aggregate_uuid(envelope)?;
        match decode::<OrderEvent>(envelope)? {
            OrderEvent::OrderPlaced {
                customer_id, lines, ..
            } => insert(tx, envelope, order_id, customer_id, &lines).await,
            OrderEvent::OrderLineReserved {
                sku,
                unit_price_cents,
                ..
            } => {
                price_line(tx, order_id, &sku, unit_price_cents).await?;
                update(tx, envelope, order_id, Change::default()).await
            }
            other => update(tx, envelope, order_id, change(other)?).await,
        }
    }

    /// Folds the batch into the rows it writes, four statements in all (see
    /// [`fold`]): what lets a rebuild keep up with the stream.
    async fn apply_all(&self, tx: &mut PgConnection, events: &[&Envelope]) -> anyhow::Result<()> {
        let mut folded = fold::Fold::default();
        for envelope in events {
            folded.add(envelope)?;
        }
        folded.write(tx).await
    }
}

/// The change an event other than `OrderPlaced` and `OrderLineReserved` makes.
fn change(event: OrderEvent) -> anyhow::Result<Change> {
    let change = match event {
        OrderEvent::OrderPlaced { .. } | OrderEvent::OrderLineReserved { .. } => {
            anyhow::bail!("OrderPlaced and OrderLineReserved write more than the order row")
        }
        OrderEvent::OrderStockReserved { total_cents, .. } => Change {
            total_cents: Some(total_cents),
            ..Change::default()
        },
        OrderEvent::OrderRejected { reason } => Change {
            status: Some(OrderStatus::Rejected),
            reason: Some(json_word(&reason)?),
            ..Change::default()
        },
        OrderEvent::OrderConfirmed { total_cents } => Change {
            status: Some(OrderStatus::Confirmed),
            total_cents: Some(total_cents),
            ..Change::default()
        },
        // The customer's cancellation words are not the rejection `reason`.
        OrderEvent::OrderCancelled { .. } => Change {
            status: Some(OrderStatus::Cancelled),
            ..Change::default()
        },
        OrderEvent::OrderShipped {} => Change {
            status: Some(OrderStatus::Shipped),
            ..Change::default()
        },
        OrderEvent::CompensationFailed { step, error } => Change {
            operator_needed: Some(serde_json::json!({"step": json_word(&step)?, "error": error})),
            ..Change::default()
        },
    };
    Ok(change)
}

// Times are the events' own, rather than now(), so that replaying the stream
// rebuilds identical rows. `ON CONFLICT DO NOTHING` keeps a replayed OrderPlaced
// from failing on, or rewinding, an order that has moved on.
async fn insert(
    tx: &mut PgConnection,
    envelope: &Envelope,
    order_id: Uuid,
    customer_id: Uuid,
    lines: &[PlacedLine],
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, version, placed_at, updated_at)
         VALUES ($1, $2, 'PENDING', $3, $4, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(order_id)
    .bind(customer_id)
    .bind(envelope.sequence)
    .bind(envelope.recorded_at)
    .execute(&mut *tx)
    .await
    .with_context(|| format!("insert order {order_id}"))?;
    let skus: Vec<&str> = lines.iter().map(|line| line.sku.as_str()).collect();
    let quantities = lines
        .iter()
        .map(|line| i64::try_from(line.quantity))
        .collect::<Result<Vec<i64>, _>>()
        .context("a quantity does not fit in bigint")?;
    sqlx::query(
        "INSERT INTO order_lines (order_id, line_number, sku, quantity)
         SELECT $1, line.number, line.sku, line.quantity
           FROM UNNEST($2::text[], $3::bigint[]) WITH ORDINALITY AS line(sku, quantity, number)
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(&skus)
    .bind(&quantities)
    .execute(tx)
    .await
    .with_context(|| format!("insert the lines of order {order_id}"))?;
    Ok(())
}

async fn price_line(
    tx: &mut PgConnection,
    order_id: Uuid,
    sku: &str,
    unit_price_cents: i64,
) -> anyhow::Result<()> {
    let updated = sqlx::query(
        "UPDATE order_lines SET unit_price_cents = $3 WHERE order_id = $1 AND sku = $2",
    )
    .bind(order_id)
    .bind(sku)
    .bind(unit_price_cents)
    .execute(tx)
    .await
    .with_context(|| format!("price line {sku} of order {order_id}"))?;
    anyhow::ensure!(
        updated.rows_affected() == 1,
        "order {order_id} has no line {sku} in the read model"
    );
    Ok(())
}

/// Moves the row to the event's version. The version guard keeps a replayed old
/// event from rewinding the row.
async fn update(
    tx: &mut PgConnection,
    envelope: &Envelope,
    order_id: Uuid,
    change: Change,
) -> anyhow::Result<()> {
    let updated = sqlx::query(
        "UPDATE orders
            SET status = COALESCE($2, status),
                total_cents = COALESCE($3, total_cents),
                reason = COALESCE($4, reason),
                operator_needed = COALESCE(
                    $7::jsonb || jsonb_build_object('at', $6::timestamptz), operator_needed),
                version = $5,
                updated_at = $6
          WHERE id = $1 AND version < $5",
    )
    .bind(order_id)
    .bind(change.status.map(OrderStatus::as_str))
    .bind(change.total_cents)
    .bind(change.reason)
    .bind(envelope.sequence)
    .bind(envelope.recorded_at)
    .bind(change.operator_needed)
    .execute(&mut *tx)
    .await
    .with_context(|| format!("update order {order_id}"))?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)")
        .bind(order_id)
        .fetch_one(tx)
        .await
        .with_context(|| format!("look up order {order_id}"))?;
    // Events of one order arrive in order, so a missing row means the read model
    // lost its OrderPlaced: retrying is better than silently diverging.
    anyhow::ensure!(exists, "order {order_id} is not in the read model");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::orders::OrderRejectionReason;

    #[test]
    fn a_rejection_records_its_reason_word_and_the_status() {
        let event = OrderEvent::OrderRejected {
            reason: OrderRejectionReason::InsufficientCredit,
        };
        let expected = Change {
            status: Some(OrderStatus::Rejected),
            reason: Some("INSUFFICIENT_CREDIT".into()),
            total_cents: None,
            operator_needed: None,
        };
        assert_eq!(change(event).unwrap(), expected);
    }

    #[test]
    fn a_cancellation_keeps_the_customers_words_out_of_the_reason() {
        let event = OrderEvent::OrderCancelled {
            reason: Some("changed my mind".into()),
            cancelled_from: OrderStatus::Confirmed,
        };
        assert_eq!(change(event).unwrap().reason, None);
    }

    #[test]
    fn a_refused_compensation_says_which_step_and_why_without_touching_the_status() {
        let event = OrderEvent::CompensationFailed {
            step: domain::orders::CompensationStep::VoidPayment,
            error: "already captured".into(),
        };
        let change = change(event).unwrap();
        assert_eq!(change.status, None);
        assert_eq!(
            change.operator_needed,
            Some(serde_json::json!({"step": "VOID_PAYMENT", "error": "already captured"}))
        );
    }
}

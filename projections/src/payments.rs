//! The `payments` read model: one row per order's payment with its amount, status
//! and decline reason, as of the payment's event `version`.

use anyhow::Context;
use async_trait::async_trait;
use domain::payments::PaymentEvent;
use platform::consumer::Handler;
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::{aggregate_uuid, decode, json_word};

/// Builds `payments` from the payments service's `Payment` events.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentsProjection;

/// The JetStream durable name, also the key of this projection's checkpoints.
pub const DURABLE_NAME: &str = "payments";

/// A payment's first event: the decision on the order's total.
struct Decision {
    customer_id: Uuid,
    amount_cents: i64,
    status: &'static str,
    reason: Option<String>,
}

#[async_trait]
impl Handler for PaymentsProjection {
    fn name(&self) -> &str {
        "payments"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        // The payment's aggregate id is its order's id.
        let order_id = aggregate_uuid(envelope)?;
        let decision = match decode::<PaymentEvent>(envelope)? {
            PaymentEvent::PaymentAuthorized {
                customer_id,
                amount_cents,
                ..
            } => Decision {
                customer_id,
                amount_cents,
                status: "AUTHORIZED",
                reason: None,
            },
            PaymentEvent::PaymentDeclined {
                customer_id,
                amount_cents,
                reason,
                ..
            } => Decision {
                customer_id,
                amount_cents,
                status: "DECLINED",
                reason: Some(json_word(&reason)?),
            },
            PaymentEvent::PaymentVoided { .. } => {
                return update(tx, envelope, order_id, "VOIDED").await
            }
            // A refused void leaves the payment captured; the order shows the refusal.
            PaymentEvent::PaymentCaptured { .. } | PaymentEvent::PaymentVoidRefused { .. } => {
                return update(tx, envelope, order_id, "CAPTURED").await
            }
        };
        insert(tx, envelope, order_id, decision).await
    }
}

// `ON CONFLICT DO NOTHING`: a replayed decision must not rewind a payment that
// was voided or captured since.
async fn insert(
    tx: &mut PgConnection,
    envelope: &Envelope,
    order_id: Uuid,
    decision: Decision,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO payments
                (order_id, customer_id, amount_cents, status, reason, version, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(decision.customer_id)
    .bind(decision.amount_cents)
    .bind(decision.status)
    .bind(decision.reason)
    .bind(envelope.sequence)
    .bind(envelope.recorded_at)
    .execute(tx)
    .await
    .with_context(|| format!("insert the payment of order {order_id}"))?;
    Ok(())
}

/// Moves the payment to a later status; the version guard keeps a replayed old
/// event from rewinding it.
async fn update(
    tx: &mut PgConnection,
    envelope: &Envelope,
    order_id: Uuid,
    status: &str,
) -> anyhow::Result<()> {
    let updated = sqlx::query(
        "UPDATE payments SET status = $2, version = $3, updated_at = $4
          WHERE order_id = $1 AND version < $3",
    )
    .bind(order_id)
    .bind(status)
    .bind(envelope.sequence)
    .bind(envelope.recorded_at)
    .execute(&mut *tx)
    .await
    .with_context(|| format!("update the payment of order {order_id}"))?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM payments WHERE order_id = $1)")
            .bind(order_id)
            .fetch_one(tx)
            .await
            .with_context(|| format!("look up the payment of order {order_id}"))?;
    // A payment's decision comes first on its own stream; without it the read
    // model lost an event.
    anyhow::ensure!(
        exists,
        "the payment of order {order_id} is not in the read model"
    );
    Ok(())
}

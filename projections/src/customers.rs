//! The `customers` read model: each customer's profile from the customers stream,
//! with counters fed by the orders stream (orders placed, lifetime spend) and the
//! payments stream (credit committed to authorized and captured payments).
//!
//! The three streams are not ordered with each other, so every write is an upsert
//! on the customer's row, and a row is served only once its registration arrived.
//! Counters move through `customer_links`: each order and payment remembers the
//! amount it counts now, and an event sets that amount, adding only the
//! difference to the customer. Applying an event twice therefore adds nothing.

use anyhow::Context;
use async_trait::async_trait;
use domain::customers::CustomerEvent;
use domain::orders::OrderEvent;
use domain::payments::PaymentEvent;
use platform::consumer::Handler;
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::{aggregate_uuid, decode};

/// Builds `customers` from `Customer`, `Order` and `Payment` events, through one
/// consumer per stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomersProjection;

/// The durable name of the consumer of the customers stream.
pub const FROM_CUSTOMERS: &str = "customers-from-customers";
/// The durable name of the consumer of the orders stream.
pub const FROM_ORDERS: &str = "customers-from-orders";
/// The durable name of the consumer of the payments stream.
pub const FROM_PAYMENTS: &str = "customers-from-payments";

/// The order events that move a customer's counters. The consumer of the orders
/// stream passes over the others (reservations, rejections, shipping) without
/// a transaction; the saga writes twice as many order events as these.
pub const ORDER_EVENTS: &[&str] = &["OrderPlaced", "OrderConfirmed", "OrderCancelled"];
/// The payment events that move the credit a customer has committed.
pub const PAYMENT_EVENTS: &[&str] = &["PaymentAuthorized", "PaymentVoided"];

/// Amounts added to a customer's counters.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counters {
    committed_cents: i64,
    orders_count: i64,
    lifetime_spend_cents: i64,
}

#[async_trait]
impl Handler for CustomersProjection {
    fn name(&self) -> &str {
        "customers"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        take_turns(tx).await?;
        apply_event(tx, envelope).await
    }

    async fn apply_all(&self, tx: &mut PgConnection, events: &[&Envelope]) -> anyhow::Result<()> {
        take_turns(tx).await?;
        for envelope in events {
            apply_event(tx, envelope)
                .await
                .with_context(|| format!("apply event {}", envelope.event_id))?;
        }
        Ok(())
    }
}

/// Waits until no other consumer of this read model (in this schema) has a
/// batch open, and keeps the others waiting until this batch ends. The three
/// consumers write the same customers' rows in their streams' orders; side by
/// side their batches deadlocked within seconds under load, and each deadlock
/// costs a second before PostgreSQL breaks it.
async fn take_turns(tx: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('read model customers in ' || current_schema(), 0))",
    )
    .execute(tx)
    .await
    .context("wait for the other consumers of customers")?;
    Ok(())
}

async fn apply_event(tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
    let id = aggregate_uuid(envelope)?;
    match envelope.aggregate_type.as_str() {
        "Customer" => apply_profile(tx, envelope, id, decode(envelope)?).await,
        "Order" => apply_order(tx, id, decode(envelope)?).await,
        "Payment" => apply_payment(tx, id, decode(envelope)?).await,
        other => anyhow::bail!("customers are not built from {other} events"),
    }
}

async fn apply_profile(
    tx: &mut PgConnection,
    envelope: &Envelope,
    customer_id: Uuid,
    event: CustomerEvent,
) -> anyhow::Result<()> {
    match event {
        CustomerEvent::CustomerRegistered {
            name,
            email,
            credit_limit_cents,
            ..
        } => {
            let profile = (name.as_str(), email.as_str(), credit_limit_cents);
            register(tx, envelope, customer_id, profile).await
        }
        CustomerEvent::CreditLimitChanged { credit_limit_cents } => {
            update_profile(tx, envelope, customer_id, Some(credit_limit_cents), None).await
        }
        CustomerEvent::CustomerDeactivated {} => {
            update_profile(tx, envelope, customer_id, None, Some(false)).await
        }
    }
}

async fn apply_order(
    tx: &mut PgConnection,
    order_id: Uuid,
    event: OrderEvent,
) -> anyhow::Result<()> {
    let spend_cents = match event {
        OrderEvent::OrderPlaced { customer_id, .. } => {
            if !link(tx, "Order", order_id, customer_id).await? {
                return Ok(());
            }
            let placed = Counters {
                orders_count: 1,
                ..Counters::default()
            };
            return add_to_counters(tx, customer_id, placed).await;
        }
        OrderEvent::OrderConfirmed { total_cents } => total_cents,
        // Only a CONFIRMED order counted its total, and a PENDING one counts zero,
        // so setting the count to zero is right whatever `cancelled_from` says.
        OrderEvent::OrderCancelled { .. } => 0,
        // Shipping keeps the confirmed total counted; the rest changes no counter.
        _ => return Ok(()),
    };
    let (customer_id, change) = recount(tx, "Order", order_id, spend_cents).await?;
    let spend = Counters {
        lifetime_spend_cents: change,
        ..Counters::default()
    };
    add_to_counters(tx, customer_id, spend).await
}

async fn apply_payment(
    tx: &mut PgConnection,
    payment_id: Uuid,
    event: PaymentEvent,
) -> anyhow::Result<()> {
    let amount_cents = match event {
        PaymentEvent::PaymentAuthorized {
            customer_id,
            amount_cents,
            ..
        } => {
            link(tx, "Payment", payment_id, customer_id).await?;
            amount_cents
        }
        PaymentEvent::PaymentVoided { .. } => 0,
        // A declined payment holds no credit; a captured one keeps holding what it
        // held while authorized, also when a void was refused.
        PaymentEvent::PaymentDeclined { .. }
        | PaymentEvent::PaymentCaptured { .. }
        | PaymentEvent::PaymentVoidRefused { .. } => return Ok(()),
    };
    let (customer_id, change) = recount(tx, "Payment", payment_id, amount_cents).await?;
    let committed = Counters {
        committed_cents: change,
        ..Counters::default()
    };
    add_to_counters(tx, customer_id, committed).await
}

/// Records whose order or payment this is; `true` the first time only.
async fn link(
    tx: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: Uuid,
    customer_id: Uuid,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO customer_links (aggregate_type, aggregate_id, customer_id)
         VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(customer_id)
    .execute(tx)
    .await
    .with_context(|| format!("link {aggregate_type} {aggregate_id} to customer {customer_id}"))?;
    Ok(inserted.rows_affected() == 1)
}

/// Sets the amount an order or payment counts, and returns its customer and how
/// much the customer's counter has to move.
async fn recount(
    tx: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: Uuid,
    counted_cents: i64,
) -> anyhow::Result<(Uuid, i64)> {
    let previous: Option<(Uuid, i64)> = sqlx::query_as(
        "SELECT customer_id, counted_cents FROM customer_links
          WHERE aggregate_type = $1 AND aggregate_id = $2 FOR UPDATE",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(&mut *tx)
    .await
    .with_context(|| format!("read the link of {aggregate_type} {aggregate_id}"))?;
    // Events of one aggregate arrive in order, so a missing link means the read
    // model lost its first event: retrying is better than silently diverging.
    let (customer_id, previous) =
        previous.with_context(|| format!("{aggregate_type} {aggregate_id} has no customer"))?;
    sqlx::query(
        "UPDATE customer_links SET counted_cents = $3
          WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(counted_cents)
    .execute(tx)
    .await
    .with_context(|| format!("recount {aggregate_type} {aggregate_id}"))?;
    Ok((customer_id, counted_cents - previous))
}

/// Adds to a customer's counters, creating the row when the customer is not known
/// yet: its registration may arrive after its orders and payments.
async fn add_to_counters(
    tx: &mut PgConnection,
    customer_id: Uuid,
    counters: Counters,
) -> anyhow::Result<()> {
    if counters == Counters::default() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO customers (id, committed_cents, orders_count, lifetime_spend_cents)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE
            SET committed_cents = customers.committed_cents + EXCLUDED.committed_cents,
                orders_count = customers.orders_count + EXCLUDED.orders_count,
                lifetime_spend_cents = customers.lifetime_spend_cents + EXCLUDED.lifetime_spend_cents",
    )
    .bind(customer_id)
    .bind(counters.committed_cents)
    .bind(counters.orders_count)
    .bind(counters.lifetime_spend_cents)
    .execute(tx)
    .await
    .with_context(|| format!("count for customer {customer_id}"))?;
    Ok(())
}

/// Fills in the profile, on a row that counters may have created already. The
/// version guard keeps a replayed registration from undoing later changes.
async fn register(
    tx: &mut PgConnection,
    envelope: &Envelope,
    customer_id: Uuid,
    (name, email, credit_limit_cents): (&str, &str, i64),
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO customers (id, registered, name, email, credit_limit_cents, active, version)
         VALUES ($1, true, $2, $3, $4, true, $5)
         ON CONFLICT (id) DO UPDATE
            SET registered = true,
                name = EXCLUDED.name,
                email = EXCLUDED.email,
                credit_limit_cents = EXCLUDED.credit_limit_cents,
                active = true,
                version = EXCLUDED.version
          WHERE customers.version < EXCLUDED.version",
    )
    .bind(customer_id)
    .bind(name)
    .bind(email)
    .bind(credit_limit_cents)
    .bind(envelope.sequence)
    .execute(tx)
    .await
    .with_context(|| format!("register customer {customer_id}"))?;
    Ok(())
}

async fn update_profile(
    tx: &mut PgConnection,
    envelope: &Envelope,
    customer_id: Uuid,
    credit_limit_cents: Option<i64>,
    active: Option<bool>,
) -> anyhow::Result<()> {
    let updated = sqlx::query(
        "UPDATE customers
            SET credit_limit_cents = COALESCE($2, credit_limit_cents),
                active = COALESCE($3, active),
                version = $4
          WHERE id = $1 AND registered AND version < $4",
    )
    .bind(customer_id)
    .bind(credit_limit_cents)
    .bind(active)
    .bind(envelope.sequence)
    .execute(&mut *tx)
    .await
    .with_context(|| format!("update customer {customer_id}"))?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    let registered: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1 AND registered)")
            .bind(customer_id)
            .fetch_one(tx)
            .await
            .with_context(|| format!("look up customer {customer_id}"))?;
    // The registration comes first on the customer's own stream; without it the
    // read model lost an event.
    anyhow::ensure!(
        registered,
        "customer {customer_id} is not registered in the read model"
    );
    Ok(())
}

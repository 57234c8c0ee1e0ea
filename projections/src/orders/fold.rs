//! A batch of order events folded into the rows it writes, so that a batch costs
//! four statements whatever its size: new orders with their lines, line prices,
//! and one update of every other order the batch moved. An order placed in the
//! batch takes its later events of the batch into the rows it inserts, so the
//! usual life of an order (placed, reserved, confirmed) close together in the
//! stream costs inserts only. The effect is that of applying the events one by
//! one (see [`super::OrdersProjection::apply`]).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::orders::{OrderEvent, OrderStatus, PlacedLine};
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{change, Change};
use crate::events::{aggregate_uuid, decode};

/// The rows a batch writes.
#[derive(Default)]
pub(super) struct Fold {
    placed: Vec<Placed>,
    placed_at: HashMap<Uuid, usize>,
    /// The line prices of orders placed before the batch, the last one per
    /// order and sku.
    prices: HashMap<(Uuid, String), i64>,
    /// Each moved order's folded change, in the order first met, for orders
    /// placed before the batch.
    moved: Vec<Moved>,
    moved_at: HashMap<Uuid, usize>,
}

/// An order placed in the batch, with what the batch's later events did to it.
struct Placed {
    id: Uuid,
    customer_id: Uuid,
    lines: Vec<PlacedLine>,
    /// Each line's unit price once reserved, by line.
    prices: Vec<Option<i64>>,
    placed_at: DateTime<Utc>,
    /// The row as the batch leaves it: its change from PENDING, version and time.
    row: Moved,
}

/// What the batch's later events do to one order's row.
struct Moved {
    id: Uuid,
    change: Change,
    /// The time of the event that set `change.operator_needed`.
    operator_needed_at: Option<DateTime<Utc>>,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl Moved {
    /// The row as `envelope`, the first event the batch has for it, finds it.
    fn new(id: Uuid, envelope: &Envelope) -> Self {
        Self {
            id,
            change: Change::default(),
            operator_needed_at: None,
            version: envelope.sequence,
            updated_at: envelope.recorded_at,
        }
    }

    /// The row after `change` by `envelope`: a later value replaces an earlier
    /// one, and the row takes the event's version and time.
    fn then(&mut self, change: Change, envelope: &Envelope) {
        if change.operator_needed.is_some() {
            self.operator_needed_at = Some(envelope.recorded_at);
        }
        self.change = Change {
            status: change.status.or(self.change.status.take()),
            total_cents: change.total_cents.or(self.change.total_cents),
            reason: change.reason.or(self.change.reason.take()),
            operator_needed: change
                .operator_needed
                .or(self.change.operator_needed.take()),
        };
        self.version = envelope.sequence;
        self.updated_at = envelope.recorded_at;
    }
}

impl Fold {
    /// Folds one event in, after every earlier event of the batch.
    pub(super) fn add(&mut self, envelope: &Envelope) -> anyhow::Result<()> {
        let order_id = aggregate_uuid(envelope)?;
        let change = match decode::<OrderEvent>(envelope)? {
            OrderEvent::OrderPlaced {
                customer_id, lines, ..
            } => {
                self.placed_at.insert(order_id, self.placed.len());
                self.placed.push(Placed {
                    id: order_id,
                    customer_id,
                    prices: vec![None; lines.len()],
                    lines,
                    placed_at: envelope.recorded_at,
                    row: Moved::new(order_id, envelope),
                });
                return Ok(());
            }
            OrderEvent::OrderLineReserved {
                sku,
                unit_price_cents,
                ..
            } => {
                match self.placed_at.get(&order_id) {
                    Some(&index) => {
                        let order = &mut self.placed[index];
                        let line = order.lines.iter().position(|line| line.sku == sku);
                        let line = line.with_context(|| {
                            format!("order {order_id} has no line {sku} in the read model")
                        })?;
                        order.prices[line] = Some(unit_price_cents);
                    }
                    None => {
                        self.prices.insert((order_id, sku), unit_price_cents);
                    }
                }
                Change::default()
            }
            other => change(other)?,
        };
        match self.placed_at.get(&order_id) {
            Some(&index) => self.placed[index].row.then(change, envelope),
            None => self.moved(order_id, change, envelope),
        }
        Ok(())
    }

    /// Merges `change` into the row of an order placed before the batch.
    fn moved(&mut self, id: Uuid, change: Change, envelope: &Envelope) {
        let index = *self.moved_at.entry(id).or_insert_with(|| {
            self.moved.push(Moved::new(id, envelope));
            self.moved.len() - 1
        });
        self.moved[index].then(change, envelope);
    }

    /// Writes the batch: the orders it placed and their lines first, so that the
    /// prices and changes of the same batch find them.
    pub(super) async fn write(mut self, tx: &mut PgConnection) -> anyhow::Result<()> {
        let skipped = insert_placed(tx, &self.placed).await?;
        // An order that was in the read model already, as after a replay, keeps
        // its row; the batch's events then update it as they would one by one.
        for order in self.placed.into_iter().filter(|o| skipped.contains(&o.id)) {
            for (line, price) in order.lines.into_iter().zip(order.prices) {
                if let Some(price) = price {
                    self.prices.insert((order.id, line.sku), price);
                }
            }
            self.moved.push(order.row);
        }
        price_lines(tx, &self.prices).await?;
        update_moved(tx, &self.moved).await
    }
}

/// Inserts the placed orders, as the batch leaves them, and their lines.
/// `ON CONFLICT DO NOTHING` keeps a replayed `OrderPlaced` from failing on, or
/// rewinding, an order that moved on; the ids of such orders are returned.
async fn insert_placed(tx: &mut PgConnection, placed: &[Placed]) -> anyhow::Result<HashSet<Uuid>> {
    if placed.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<Uuid> = placed.iter().map(|order| order.id).collect();
    let customers: Vec<Uuid> = placed.iter().map(|order| order.customer_id).collect();
    let statuses: Vec<&str> = placed
        .iter()
        .map(|order| {
            order
                .row
                .change
                .status
                .unwrap_or(OrderStatus::Pending)
                .as_str()
        })
        .collect();
    let totals: Vec<Option<i64>> = placed.iter().map(|o| o.row.change.total_cents).collect();
    let reasons: Vec<Option<&str>> = placed
        .iter()
        .map(|order| order.row.change.reason.as_deref())
        .collect();
    let operators: Vec<Option<&serde_json::Value>> = placed
        .iter()
        .map(|order| order.row.change.operator_needed.as_ref())
        .collect();
    let operators_at: Vec<Option<DateTime<Utc>>> = placed
        .iter()
        .map(|order| order.row.operator_needed_at)
        .collect();
    let versions: Vec<i64> = placed.iter().map(|order| order.row.version).collect();
    let placed_times: Vec<DateTime<Utc>> = placed.iter().map(|order| order.placed_at).collect();
    let updated_times: Vec<DateTime<Utc>> =
        placed.iter().map(|order| order.row.updated_at).collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO orders (id, customer_id, status, total_cents, reason, operator_needed,
                             version, placed_at, updated_at)
         SELECT id, customer_id, status, total_cents, reason,
                operator_needed || jsonb_build_object('at', operator_needed_at),
                version, placed_at, updated_at
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                       $6::jsonb[], $7::timestamptz[], $8::bigint[], $9::timestamptz[],
                       $10::timestamptz[])
                AS placed (id, customer_id, status, total_cents, reason, operator_needed,
                           operator_needed_at, version, placed_at, updated_at)
         ON CONFLICT (id) DO NOTHING
         RETURNING id",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&statuses)
    .bind(&totals)
    .bind(&reasons)
    .bind(&operators)
    .bind(&operators_at)
    .bind(&versions)
    .bind(&placed_times)
    .bind(&updated_times)
    .fetch_all(&mut *tx)
    .await
    .context("insert the batch's orders")?;
    let skipped: HashSet<Uuid> = if inserted.len() == ids.len() {
        Default::default()
    } else {
        let inserted: HashSet<Uuid> = inserted.into_iter().collect();
        ids.into_iter()
            .filter(|id| !inserted.contains(id))
            .collect()
    };

    let (mut orders, mut numbers, mut skus, mut quantities, mut prices) =
        (vec![], vec![], vec![], vec![], vec![]);
    for order in placed.iter().filter(|order| !skipped.contains(&order.id)) {
        for ((number, line), price) in (1i32..).zip(&order.lines).zip(&order.prices) {
            orders.push(order.id);
            numbers.push(number);
            skus.push(line.sku.as_str());
            quantities
                .push(i64::try_from(line.quantity).context("a quantity does not fit in bigint")?);
            prices.push(*price);
        }
    }
    // Only the lines of orders inserted just above, so none can be there already
    // (an order's skus are distinct): a plain insert, at about half the cost of
    // one that checks each line for a conflict first.
    sqlx::query(
        "INSERT INTO order_lines (order_id, line_number, sku, quantity, unit_price_cents)
         SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::bigint[], $5::bigint[])",
    )
    .bind(&orders)
    .bind(&numbers)
    .bind(&skus)
    .bind(&quantities)
    .bind(&prices)
    .execute(tx)
    .await
    .context("insert the lines of the batch's orders")?;
    Ok(skipped)
}

/// Sets the reserved lines' unit prices; each must find its line. Lines are
/// looked up one by one (see `platform::db::connect`), as are the orders that
/// [`update_moved`] moves.
async fn price_lines(
    tx: &mut PgConnection,
    prices: &HashMap<(Uuid, String), i64>,
) -> anyhow::Result<()> {
    if prices.is_empty() {
        return Ok(());
    }
    let (mut orders, mut skus, mut cents) = (vec![], vec![], vec![]);
    for ((order, sku), price) in prices {
        orders.push(*order);
        skus.push(sku.as_str());
        cents.push(*price);
    }
    let priced = sqlx::query(
        "UPDATE order_lines AS line SET unit_price_cents = priced.cents
           FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS priced (order_id, sku, cents)
          CROSS JOIN LATERAL (
                SELECT ctid FROM order_lines
                 WHERE order_id = priced.order_id AND sku = priced.sku
                OFFSET 0) AS row
          WHERE line.ctid = row.ctid",
    )
    .bind(&orders)
    .bind(&skus)
    .bind(&cents)
    .execute(&mut *tx)
    .await
    .context("price the batch's order lines")?
    .rows_affected();
    // A line is priced at most once, as (order, sku) is unique: fewer rows than
    // prices means a line is missing, which only then is looked for.
    if priced < prices.len() as u64 {
        let found: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT order_id, sku FROM order_lines
              WHERE (order_id, sku) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
        )
        .bind(&orders)
        .bind(&skus)
        .fetch_all(tx)
        .await
        .context("look up the lines the batch did not price")?;
        let found: HashSet<_> = found.into_iter().collect();
        if let Some((order, sku)) = prices.keys().find(|key| !found.contains(*key)) {
            anyhow::bail!("order {order} has no line {sku} in the read model");
        }
    }
    Ok(())
}

/// Moves every changed order to its last event's version. The version guard keeps
/// a replayed old event from rewinding a row; a row that is missing altogether
/// means the read model lost its `OrderPlaced`, which is an error.
async fn update_moved(tx: &mut PgConnection, moved: &[Moved]) -> anyhow::Result<()> {
    if moved.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = moved.iter().map(|row| row.id).collect();
    let statuses: Vec<Option<&str>> = moved
        .iter()
        .map(|row| row.change.status.map(OrderStatus::as_str))
        .collect();
    let totals: Vec<Option<i64>> = moved.iter().map(|row| row.change.total_cents).collect();
    let reasons: Vec<Option<&str>> = moved
        .iter()
        .map(|row| row.change.reason.as_deref())
        .collect();
    let operators: Vec<Option<&serde_json::Value>> = moved
        .iter()
        .map(|row| row.change.operator_needed.as_ref())
        .collect();
    let operators_at: Vec<Option<DateTime<Utc>>> =
        moved.iter().map(|row| row.operator_needed_at).collect();
    let versions: Vec<i64> = moved.iter().map(|row| row.version).collect();
    let times: Vec<DateTime<Utc>> = moved.iter().map(|row| row.updated_at).collect();
    let updated = sqlx::query(
        "UPDATE orders AS o
            SET status = COALESCE(c.status, o.status),
                total_cents = COALESCE(c.total_cents, o.total_cents),
                reason = COALESCE(c.reason, o.reason),
                operator_needed = COALESCE(
                    c.operator_needed || jsonb_build_object('at', c.operator_needed_at),
                    o.operator_needed),
                version = c.version,
                updated_at = c.updated_at
           FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[],
                       $6::timestamptz[], $7::bigint[], $8::timestamptz[])
                AS c (id, status, total_cents, reason, operator_needed, operator_needed_at,
                      version, updated_at)
          CROSS JOIN LATERAL (SELECT ctid FROM orders WHERE id = c.id OFFSET 0) AS row
          WHERE o.ctid = row.ctid AND o.version < c.version",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&totals)
    .bind(&reasons)
    .bind(&operators)
    .bind(&operators_at)
    .bind(&versions)
    .bind(&times)
    .execute(&mut *tx)
    .await
    .context("update the batch's orders")?
    .rows_affected();
    if updated == ids.len() as u64 {
        return Ok(());
    }
    // Some rows were newer than the batch (a replay) or are missing: only the
    // missing ones are an error.
    let found: HashSet<Uuid> = sqlx::query_scalar("SELECT id FROM orders WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(tx)
        .await
        .context("look up the orders the batch did not move")?
        .into_iter()
        .collect();
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        anyhow::bail!("order {missing} is not in the read model");
    }
    Ok(())
}

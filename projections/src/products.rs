//! The `products` read model: one row per product with its price, stock on hand,
//! reserved stock and the version (event sequence) it reflects.

use anyhow::Context;
use async_trait::async_trait;
use domain::inventory::ProductEvent;
use platform::consumer::Handler;
use platform::Envelope;
use sqlx::PgConnection;

/// Builds the `products` table from the inventory service's `Product` events.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProductsProjection;

/// The JetStream durable name, also the key of this projection's checkpoints.
pub const DURABLE_NAME: &str = "products";

/// What one event does to an existing row: amounts added to the stock columns and
/// an optional new price.
#[derive(Debug, Default, PartialEq, Eq)]
struct Change {
    on_hand: i64,
    reserved: i64,
    price_cents: Option<i64>,
}

#[async_trait]
impl Handler for ProductsProjection {
    fn name(&self) -> &str {
        "products"
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        let event: ProductEvent = envelope
            .decode()
            .with_context(|| format!("decode {} as a product event", envelope.event_type))?;
        match event {
            ProductEvent::ProductAdded {
                name,
                price_cents,
                initial_stock,
                ..
            } => insert(tx, envelope, &name, price_cents, quantity(initial_stock)?).await,
            other => update(tx, envelope, change(other)?).await,
        }
    }

    /// Folds the batch into one row per product and writes each once: the
    /// products added in the batch with one `INSERT`, the others with one
    /// `UPDATE`. A batch of restocks to a few products is then two statements,
    /// which is what lets a rebuild keep up with the stream.
    async fn apply_all(&self, tx: &mut PgConnection, events: &[&Envelope]) -> anyhow::Result<()> {
        let mut fold = Fold::default();
        for envelope in events {
            let event: ProductEvent = envelope
                .decode()
                .with_context(|| format!("decode {} as a product event", envelope.event_type))?;
            fold.add(envelope, event)?;
        }
        fold.write(tx).await
    }
}

/// A batch of product events folded into the rows they write.
#[derive(Default)]
struct Fold<'a> {
    /// Each product's row in the order it was first met.
    rows: Vec<(&'a str, Folded)>,
    at: std::collections::HashMap<&'a str, usize>,
}

/// What the batch does to one product's row.
enum Folded {
    /// Added in this batch: the whole row.
    New {
        name: String,
        price_cents: i64,
        on_hand: i64,
        reserved: i64,
        version: i64,
        updated_at: chrono::DateTime<chrono::Utc>,
    },
    /// Added before: the sum of the changes, the last price and version.
    Existing {
        change: Change,
        /// Whether a change must find the row (see [`update`]).
        needs_row: bool,
        version: i64,
        updated_at: chrono::DateTime<chrono::Utc>,
    },
}

impl<'a> Fold<'a> {
    fn add(&mut self, envelope: &'a Envelope, event: ProductEvent) -> anyhow::Result<()> {
        let sku = envelope.aggregate_id.as_str();
        let (version, updated_at) = (envelope.sequence, envelope.recorded_at);
        let folded = match event {
            ProductEvent::ProductAdded {
                name,
                price_cents,
                initial_stock,
                ..
            } => {
                // Only no-op events (rejections for an unknown sku) may come before.
                if let Some(
                    Folded::New { .. }
                    | Folded::Existing {
                        needs_row: true, ..
                    },
                ) = self.get(sku)
                {
                    anyhow::bail!("product {sku} is added after it had a row");
                }
                Folded::New {
                    name,
                    price_cents,
                    on_hand: quantity(initial_stock)?,
                    reserved: 0,
                    version,
                    updated_at,
                }
            }
            other => {
                let next = change(other)?;
                match self.take(sku) {
                    Some(Folded::New {
                        name,
                        price_cents,
                        on_hand,
                        reserved,
                        ..
                    }) => Folded::New {
                        name,
                        price_cents: next.price_cents.unwrap_or(price_cents),
                        on_hand: on_hand + next.on_hand,
                        reserved: reserved + next.reserved,
                        version,
                        updated_at,
                    },
                    Some(Folded::Existing {
                        change, needs_row, ..
                    }) => Folded::Existing {
                        needs_row: needs_row || next != Change::default(),
                        change: Change {
                            on_hand: change.on_hand + next.on_hand,
                            reserved: change.reserved + next.reserved,
                            price_cents: next.price_cents.or(change.price_cents),
                        },
                        version,
                        updated_at,
                    },
                    None => Folded::Existing {
                        needs_row: next != Change::default(),
                        change: next,
                        version,
                        updated_at,
                    },
                }
            }
        };
        self.put(sku, folded);
        Ok(())
    }

    fn get(&self, sku: &str) -> Option<&Folded> {
        self.at.get(sku).map(|&index| &self.rows[index].1)
    }

    fn take(&mut self, sku: &str) -> Option<Folded> {
        let index = *self.at.get(sku)?;
        // A placeholder that `put` overwrites at once.
        let placeholder = Folded::Existing {
            change: Change::default(),
            needs_row: false,
            version: 0,
            updated_at: chrono::DateTime::default(),
        };
        Some(std::mem::replace(&mut self.rows[index].1, placeholder))
    }

    fn put(&mut self, sku: &'a str, folded: Folded) {
        match self.at.get(sku) {
            Some(&index) => self.rows[index].1 = folded,
            None => {
                self.at.insert(sku, self.rows.len());
                self.rows.push((sku, folded));
            }
        }
    }

    async fn write(self, tx: &mut PgConnection) -> anyhow::Result<()> {
        let mut new = NewRows::default();
        let mut existing = ExistingRows::default();
        for (sku, folded) in self.rows {
            match folded {
                Folded::New {
                    name,
                    price_cents,
                    on_hand,
                    reserved,
                    version,
                    updated_at,
                } => {
                    new.skus.push(sku);
                    new.names.push(name);
                    new.prices.push(price_cents);
                    new.on_hand.push(on_hand);
                    new.reserved.push(reserved);
                    new.versions.push(version);
                    new.times.push(updated_at);
                }
                Folded::Existing {
                    change,
                    needs_row,
                    version,
                    updated_at,
                } => {
                    existing.skus.push(sku);
                    existing.on_hand.push(change.on_hand);
                    existing.reserved.push(change.reserved);
                    existing.prices.push(change.price_cents);
                    existing.versions.push(version);
                    existing.times.push(updated_at);
                    if needs_row {
                        existing.needing_row.insert(sku);
                    }
                }
            }
        }
        new.insert(tx).await?;
        existing.update(tx).await
    }
}

#[derive(Default)]
struct NewRows<'a> {
    skus: Vec<&'a str>,
    names: Vec<String>,
    prices: Vec<i64>,
    on_hand: Vec<i64>,
    reserved: Vec<i64>,
    versions: Vec<i64>,
    times: Vec<chrono::DateTime<chrono::Utc>>,
}

impl NewRows<'_> {
    async fn insert(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        if self.skus.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO products (sku, name, price_cents, on_hand, reserved, version, updated_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                  $5::bigint[], $6::bigint[], $7::timestamptz[])",
        )
        .bind(&self.skus)
        .bind(&self.names)
        .bind(&self.prices)
        .bind(&self.on_hand)
        .bind(&self.reserved)
        .bind(&self.versions)
        .bind(&self.times)
        .execute(tx)
        .await
        .context("insert the batch's new products")?;
        Ok(())
    }
}

#[derive(Default)]
struct ExistingRows<'a> {
    skus: Vec<&'a str>,
    on_hand: Vec<i64>,
    reserved: Vec<i64>,
    prices: Vec<Option<i64>>,
    versions: Vec<i64>,
    times: Vec<chrono::DateTime<chrono::Utc>>,
    needing_row: std::collections::HashSet<&'a str>,
}

impl ExistingRows<'_> {
    async fn update(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        if self.skus.is_empty() {
            return Ok(());
        }
        let updated: Vec<String> = sqlx::query_scalar(
            "UPDATE products AS p
                SET on_hand = p.on_hand + c.on_hand,
                    reserved = p.reserved + c.reserved,
                    price_cents = COALESCE(c.price_cents, p.price_cents),
                    version = c.version,
                    updated_at = c.updated_at
               FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],
                           $5::bigint[], $6::timestamptz[])
                    AS c (sku, on_hand, reserved, price_cents, version, updated_at)
              WHERE p.sku = c.sku
          RETURNING p.sku",
        )
        .bind(&self.skus)
        .bind(&self.on_hand)
        .bind(&self.reserved)
        .bind(&self.prices)
        .bind(&self.versions)
        .bind(&self.times)
        .fetch_all(tx)
        .await
        .context("update the batch's products")?;
        let found: std::collections::HashSet<&str> = updated.iter().map(String::as_str).collect();
        // As in `update`: a change that finds no row means a lost ProductAdded.
        if let Some(missing) = self.needing_row.iter().find(|sku| !found.contains(**sku)) {
            anyhow::bail!("product {missing} is not in the read model");
        }
        Ok(())
    }
}

/// The change an event other than `ProductAdded` makes. A rejected reservation
/// changes no stock, but the row still moves to its version.
fn change(event: ProductEvent) -> anyhow::Result<Change> {
    let change = match event {
        ProductEvent::ProductAdded { .. } => {
            anyhow::bail!("ProductAdded inserts, it does not update")
        }
        ProductEvent::Restocked { quantity: q } => Change {
            on_hand: quantity(q)?,
            ..Change::default()
        },
        ProductEvent::PriceChanged { price_cents } => Change {
            price_cents: Some(price_cents),
            ..Change::default()
        },
        ProductEvent::StockReserved { quantity: q, .. } => Change {
            reserved: quantity(q)?,
            ..Change::default()
        },
        ProductEvent::StockReservationRejected { .. }
        | ProductEvent::ReservationReleaseRefused { .. } => Change::default(),
        ProductEvent::ReservationReleased { quantity: q, .. } => Change {
            reserved: -quantity(q)?,
            ..Change::default()
        },
        ProductEvent::ReservationCommitted { quantity: q, .. } => Change {
            on_hand: -quantity(q)?,
            reserved: -quantity(q)?,
            ..Change::default()
        },
    };
    Ok(change)
}

fn quantity(units: u64) -> anyhow::Result<i64> {
    i64::try_from(units).context("quantity does not fit in bigint")
}

// `updated_at` is the event's own time rather than now(), so that replaying the
// stream rebuilds identical rows.
async fn insert(
    tx: &mut PgConnection,
    envelope: &Envelope,
    name: &str,
    price_cents: i64,
    on_hand: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO products (sku, name, price_cents, on_hand, reserved, version, updated_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6)",
    )
    .bind(&envelope.aggregate_id)
    .bind(name)
    .bind(price_cents)
    .bind(on_hand)
    .bind(envelope.sequence)
    .bind(envelope.recorded_at)
    .execute(tx)
    .await
    .with_context(|| format!("insert product {}", envelope.aggregate_id))?;
    Ok(())
}

async fn update(tx: &mut PgConnection, envelope: &Envelope, change: Change) -> anyhow::Result<()> {
    let changes_nothing = change == Change::default();
    let updated = sqlx::query(
        "UPDATE products
            SET on_hand = on_hand + $2,
                reserved = reserved + $3,
                price_cents = COALESCE($4, price_cents),
                version = $5,
                updated_at = $6
          WHERE sku = $1",
    )
    .bind(&envelope.aggregate_id)
    .bind(change.on_hand)
    .bind(change.reserved)
    .bind(change.price_cents)
    .bind(envelope.sequence)
    .bind(envelope.recorded_at)
    .execute(tx)
    .await
    .with_context(|| format!("update product {}", envelope.aggregate_id))?;
    // An order for a sku that was never added is rejected by an event on that sku
    // (decision 0008), which has no row to move and needs none.
    if updated.rows_affected() == 0 && changes_nothing {
        return Ok(());
    }
    // Events of one aggregate arrive in order, so a missing row means the read
    // model lost its ProductAdded: retrying is better than silently diverging.
    anyhow::ensure!(
        updated.rows_affected() == 1,
        "product {} is not in the read model",
        envelope.aggregate_id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn committing_a_reservation_takes_it_from_both_on_hand_and_reserved() {
        let event = ProductEvent::ReservationCommitted {
            order_id: Uuid::nil(),
            quantity: 3,
        };
        let expected = Change {
            on_hand: -3,
            reserved: -3,
            price_cents: None,
        };
        assert_eq!(change(event).unwrap(), expected);
    }

    #[test]
    fn a_quantity_beyond_bigint_is_an_error_not_a_wrap() {
        assert!(change(ProductEvent::Restocked { quantity: u64::MAX }).is_err());
    }
}

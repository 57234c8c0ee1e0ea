//! A batch of product events folded into one row per product, written with one
//! `INSERT` for the products the batch adds and one `UPDATE` for the others. The
//! effect is that of applying the events one by one (see
//! [`super::ProductsProjection::apply`]).

use anyhow::Context;
use domain::inventory::ProductEvent;
use platform::Envelope;
use sqlx::PgConnection;

use super::{change, quantity, Change};

/// A batch of product events folded into the rows they write.
#[derive(Default)]
pub(super) struct Fold<'a> {
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
    pub(super) fn add(
        &mut self,
        envelope: &'a Envelope,
        event: ProductEvent,
    ) -> anyhow::Result<()> {
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

    pub(super) async fn write(self, tx: &mut PgConnection) -> anyhow::Result<()> {
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
    /// Updates the rows sku by sku (see `platform::db::connect`).
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
              CROSS JOIN LATERAL (SELECT ctid FROM products WHERE sku = c.sku OFFSET 0) AS row
              WHERE p.ctid = row.ctid
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

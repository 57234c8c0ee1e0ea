//! The `products` read model: one row per product with its price, stock on hand,
//! reserved stock and the version (event sequence) it reflects.

use anyhow::Context;
use async_trait::async_trait;
use domain::inventory::ProductEvent;
use platform::consumer::Handler;
use platform::Envelope;
use sqlx::PgConnection;

mod fold;

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
        let mut fold = fold::Fold::default();
        for envelope in events {
            let event: ProductEvent = envelope
                .decode()
                .with_context(|| format!("decode {} as a product event", envelope.event_type))?;
            fold.add(envelope, event)?;
        }
        fold.write(tx).await
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

    /// A product event of `MUG` as the inventory relay publishes it.
    fn mug_event(sequence: i64, event: &ProductEvent) -> Envelope {
        let tagged = serde_json::to_value(event).unwrap();
        let (event_type, payload) = tagged.as_object().unwrap().iter().next().unwrap();
        Envelope {
            service: "inventory".into(),
            event_id: Envelope::event_id_for("inventory", "Product", "MUG", sequence),
            payload: payload.clone(),
            ..platform::testing::orders_event("Product", "MUG", sequence, event_type)
        }
    }

    /// Among the benchmark's 1,000 products, a batch reads only the rows it moves,
    /// without statistics to go by (see `platform::db::connect`).
    #[tokio::test]
    async fn a_batch_reads_only_the_products_it_moves() {
        use platform::consumer::{apply_batch, ConsumerConfig};
        use platform::testing::{rows_read, test_stream, TestDb};

        let db = TestDb::new(&[&platform::db::READ_MODEL_MIGRATIONS, &crate::MIGRATIONS])
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO products (sku, name, price_cents, on_hand, reserved, version, updated_at)
             SELECT 'OTHER-' || i, 'Other', 100, 0, 0, 1, now() FROM generate_series(1, 1000) i",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let config = ConsumerConfig::new(DURABLE_NAME, test_stream("inventory"), String::new());
        let added = mug_event(
            1,
            &ProductEvent::ProductAdded {
                sku: "MUG".into(),
                name: "Mug".into(),
                price_cents: 900,
                initial_stock: 10,
            },
        );
        let restocked = mug_event(2, &ProductEvent::Restocked { quantity: 5 });
        // One connection, whose reads `rows_read` counts.
        let pool = platform::db::connect(db.options(), 1).await.unwrap();
        apply_batch(&pool, &ProductsProjection, &config, [(&added, 1)])
            .await
            .unwrap();

        let before = rows_read(&pool, "products").await;
        apply_batch(&pool, &ProductsProjection, &config, [(&restocked, 2)])
            .await
            .unwrap();
        let read = rows_read(&pool, "products").await - before;
        assert!(
            read <= 10,
            "the batch read {read} product rows to restock one"
        );
        let on_hand: i64 = sqlx::query_scalar("SELECT on_hand FROM products WHERE sku = 'MUG'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(on_hand, 15);
    }
}

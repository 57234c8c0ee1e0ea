//! Two replicas of the inventory service share one event store, and each keeps the
//! products it wrote in memory. Neither may act on a stale copy: an append to one
//! is refused by the events table and retried, and a refusal decided on one is
//! decided again on the stored product.

use domain::inventory::{Product, ProductCommand, ReservationStatus};
use domain::values::{Money, ProductName, Quantity, Sku};
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::{AggregateStore, CommandContext};
use platform::testing::TestDb;
use uuid::Uuid;

const SKU: &str = "MUG-BLUE";

struct Replicas {
    db: TestDb,
    first: AggregateStore<Product>,
    second: AggregateStore<Product>,
}

impl Replicas {
    /// Two stores on one empty database.
    async fn new() -> Self {
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
            .await
            .expect("test database");
        Self {
            first: AggregateStore::new("inventory", db.pool.clone(), ()),
            second: AggregateStore::new("inventory", db.pool.clone(), ()),
            db,
        }
    }

    /// Two stores on one database; the first adds the product with 10 units, so
    /// that it holds the product in memory.
    async fn with_product() -> Self {
        let replicas = Self::new().await;
        add_product(&replicas.first).await;
        replicas
    }

    async fn sequences(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(SKU)
            .fetch_all(&self.db.pool)
            .await
            .expect("read sequences")
    }
}

async fn add_product(store: &AggregateStore<Product>) {
    let add = ProductCommand::AddProduct {
        sku: Sku::parse(SKU).expect("sku"),
        name: ProductName::parse("Blue mug").expect("name"),
        price: Money::from_cents(900).expect("price"),
        initial_stock: 10,
    };
    let version = store.execute(SKU, add, &context()).await;
    assert_eq!(version.expect("add the product"), 1);
}

fn context() -> CommandContext {
    CommandContext {
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        expected_version: None,
    }
}

fn restock(units: u32) -> ProductCommand {
    ProductCommand::Restock {
        quantity: Quantity::new(units).expect("quantity"),
    }
}

#[tokio::test]
async fn an_append_to_a_stale_copy_is_retried_on_the_stored_product() {
    let replicas = Replicas::with_product().await;
    let by_second = replicas.second.execute(SKU, restock(5), &context()).await;
    assert_eq!(by_second.expect("restock on the second replica"), 2);

    // The first replica still holds version 1 in memory.
    let by_first = replicas.first.execute(SKU, restock(7), &context()).await;
    assert_eq!(by_first.expect("restock on the first replica"), 3);

    assert_eq!(replicas.sequences().await, vec![1, 2, 3]);
    let (product, version) = replicas.first.load(SKU).await.expect("load");
    assert_eq!((product.on_hand(), version), (22, 3));
}

#[tokio::test]
async fn a_decision_to_append_nothing_on_a_stale_copy_is_made_again() {
    let replicas = Replicas::with_product().await;
    let order_id = Uuid::now_v7();
    let reserve = ProductCommand::ReserveStock {
        order_id,
        quantity: Quantity::new(4).expect("quantity"),
    };
    replicas
        .second
        .execute(SKU, reserve, &context())
        .await
        .expect("reserve on the second replica");

    // In the first replica's memory the order holds nothing, so a release there
    // would release nothing.
    let release = ProductCommand::ReleaseReservation { order_id };
    let status = |product: &Product| product.reservation(order_id).map(|r| r.status);
    let (version, reservation) = replicas
        .first
        .execute_and_inspect(SKU, release, &context(), status)
        .await
        .expect("release on the first replica");

    assert_eq!(reservation, Some(ReservationStatus::Released));
    assert_eq!(version, 3);
    assert_eq!(replicas.sequences().await, vec![1, 2, 3]);
}

#[tokio::test]
async fn a_refusal_on_a_stale_copy_is_decided_again() {
    let replicas = Replicas::new().await;
    let refused = replicas.first.execute(SKU, restock(1), &context()).await;
    assert!(refused.is_err(), "no product yet: {refused:?}");

    // The second replica adds the product that the first remembers as missing.
    add_product(&replicas.second).await;

    let version = replicas.first.execute(SKU, restock(1), &context()).await;
    assert_eq!(version.expect("restock after all"), 2);
    assert_eq!(replicas.sequences().await, vec![1, 2]);
}

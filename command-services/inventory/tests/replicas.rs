//! Each inventory store keeps the products it wrote in memory. Within one process,
//! commands on a product take turns: each decides on the product as the command
//! before it left it, so none reads the event store and none loses a race to
//! append. Two replicas share one event store, and neither may act on a stale
//! copy: an append to one is refused by the events table and retried, and a
//! refusal decided on one is decided again on the stored product.

use domain::inventory::{Product, ProductCommand, ReservationStatus};
use domain::values::{Money, ProductName, Quantity, Sku};
use futures::future::join_all;
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::{AggregateStore, CommandContext};
use platform::testing::{rows_read, TestDb};
use sqlx::postgres::PgPoolOptions;
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
async fn concurrent_commands_on_one_product_take_turns_without_reading_the_store() {
    let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
        .await
        .expect("test database");
    // One connection, whose reads `rows_read` counts.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(db.options())
        .await
        .expect("connect");
    let store = AggregateStore::<Product>::new("inventory", pool.clone(), ());
    add_product(&store).await;
    let before = rows_read(&pool, "events").await;

    let contexts: Vec<CommandContext> = (0..8).map(|_| context()).collect();
    let restocks = contexts
        .iter()
        .map(|context| store.execute(SKU, restock(1), context));
    let mut versions: Vec<i64> = join_all(restocks)
        .await
        .into_iter()
        .map(|version| version.expect("restock"))
        .collect();

    versions.sort_unstable();
    assert_eq!(versions, (2..=9).collect::<Vec<i64>>());
    let read = rows_read(&pool, "events").await - before;
    assert_eq!(
        read, 0,
        "a command loaded the product instead of waiting its turn"
    );
    let (product, version) = store.load(SKU).await.expect("load");
    assert_eq!((product.on_hand(), version), (18, 9));
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

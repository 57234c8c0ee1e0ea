//! Commands on one product in one process take turns: each decides on the product
//! as the command before it left it in memory, so none reads the event store, and
//! none loses a race to append.

use domain::inventory::{Product, ProductCommand};
use domain::values::{Money, ProductName, Quantity, Sku};
use futures::future::join_all;
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::{AggregateStore, CommandContext};
use platform::testing::{rows_read, TestDb};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const SKU: &str = "MUG-GREEN";

fn context() -> CommandContext {
    CommandContext {
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        expected_version: None,
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
    let add = ProductCommand::AddProduct {
        sku: Sku::parse(SKU).expect("sku"),
        name: ProductName::parse("Green mug").expect("name"),
        price: Money::from_cents(900).expect("price"),
        initial_stock: 10,
    };
    store.execute(SKU, add, &context()).await.expect("add");
    let before = rows_read(&pool, "events").await;

    let restocks = (0..8).map(|_| {
        let restock = ProductCommand::Restock {
            quantity: Quantity::new(1).expect("quantity"),
        };
        async { store.execute(SKU, restock, &context()).await }
    });
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

//! A command's events are appended by one statement (decision 0025): in one
//! transaction, with `global_position` following the aggregate's sequence, which
//! is the order the relay publishes them in.

use domain::orders::{Order, OrderCommand};
use domain::values::{LineQuantity, OrderLine, OrderLines, Sku};
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::{AggregateStore, CommandContext};
use platform::testing::TestDb;
use uuid::Uuid;

#[tokio::test]
async fn a_command_with_two_events_appends_them_together_in_sequence_order() -> anyhow::Result<()> {
    let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS]).await?;
    let store = AggregateStore::<Order>::new("orders", db.pool.clone(), ());
    let context = CommandContext::default();
    let order_id = Uuid::now_v7();
    let id = order_id.to_string();
    let sku = Sku::parse("MUG-BLUE")?;
    let place = OrderCommand::PlaceOrder {
        order_id,
        customer_id: Uuid::now_v7(),
        lines: OrderLines::new(vec![OrderLine {
            sku: sku.clone(),
            quantity: LineQuantity::new(2)?,
        }])?,
    };
    store.execute(&id, place, &context).await?;
    // The only line's reservation also prices the whole order: two events.
    let reserved = OrderCommand::RecordStockReserved {
        sku,
        quantity: 2,
        unit_price_cents: 900,
    };
    assert_eq!(store.execute(&id, reserved, &context).await?, 3);

    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT sequence, event_type, transaction_id::text::bigint FROM events \
         WHERE aggregate_id = $1 ORDER BY global_position",
    )
    .bind(&id)
    .fetch_all(&db.pool)
    .await?;
    let in_position_order: Vec<(i64, &str)> = rows
        .iter()
        .map(|(sequence, event_type, _)| (*sequence, event_type.as_str()))
        .collect();
    assert_eq!(
        in_position_order,
        [
            (1, "OrderPlaced"),
            (2, "OrderLineReserved"),
            (3, "OrderStockReserved")
        ]
    );
    assert_eq!(
        rows[1].2, rows[2].2,
        "one command's events, one transaction"
    );
    assert_ne!(rows[0].2, rows[1].2, "two commands, two transactions");
    Ok(())
}

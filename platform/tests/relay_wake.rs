//! A store in the process of the leading relay wakes it in memory, and its appends
//! send no `NOTIFY`; while the relay leads elsewhere, they notify as before
//! (decision 0025).

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use domain::inventory::{Product, ProductCommand};
use domain::values::{Money, ProductName, Quantity, Sku};
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::{AggregateStore, CommandContext};
use platform::relay::{Relay, RelayConfig, RelayWake};
use platform::testing::{nats_url, test_stream, TestDb};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

const SERVICE: &str = "inventory";
const SKU: &str = "MUG-BLUE";

/// Adds a product and restocks it twice: three events, in three statements.
async fn append_three_events(store: &AggregateStore<Product>) -> anyhow::Result<()> {
    let context = CommandContext::default();
    let add = ProductCommand::AddProduct {
        sku: Sku::parse(SKU)?,
        name: ProductName::parse("Blue mug")?,
        price: Money::from_cents(900)?,
        initial_stock: 10,
    };
    store.execute(SKU, add, &context).await?;
    for _ in 0..2 {
        let restock = ProductCommand::Restock {
            quantity: Quantity::new(1)?,
        };
        store.execute(SKU, restock, &context).await?;
    }
    Ok(())
}

/// Listens where the events trigger notifies.
async fn listen(db: &TestDb) -> anyhow::Result<PgListener> {
    let mut listener = PgListener::connect_with(&db.pool).await?;
    listener.listen("events_appended").await?;
    Ok(listener)
}

/// Whether a notification arrives within `limit`.
async fn notified_within(listener: &mut PgListener, limit: Duration) -> anyhow::Result<bool> {
    match tokio::time::timeout(limit, listener.recv()).await {
        Ok(notification) => notification.map(|_| true).context("LISTEN connection"),
        Err(_) => Ok(false),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_in_the_leading_relays_process_wakes_it_without_notify() -> anyhow::Result<()> {
    let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS]).await?;
    let jetstream = jetstream::new(platform::nats::connect(&nats_url()).await?);
    let stream = test_stream(SERVICE);
    platform::nats::ensure_stream(&jetstream, &stream).await?;
    let mut listener = listen(&db).await?;
    let wake = RelayWake::default();
    // The poll is an hour away: only a wake-up sends the events.
    let config = RelayConfig {
        poll_interval: Duration::from_secs(3600),
        ..RelayConfig::default()
    };
    let shutdown = CancellationToken::new();
    let relay = Relay::new(
        SERVICE,
        db.pool.clone(),
        db.options(),
        jetstream.clone(),
        stream.clone(),
        config,
    )
    .with_wake(wake.clone())
    .spawn(shutdown.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wake.relay_leads_here() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the relay did not lead within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let store = AggregateStore::<Product>::new(SERVICE, db.pool.clone(), ()).with_relay_wake(wake);
    append_three_events(&store).await?;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = jetstream
            .get_stream(&stream.name)
            .await?
            .info()
            .await?
            .clone();
        if info.state.messages == 3 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of 3 events published within 10 s",
            info.state.messages
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !notified_within(&mut listener, Duration::from_millis(300)).await?,
        "an append from the relay's own process sent a NOTIFY"
    );

    shutdown.cancel();
    relay.await??;
    jetstream.delete_stream(&stream.name).await?;
    Ok(())
}

#[tokio::test]
async fn a_store_notifies_while_its_process_has_no_leading_relay() -> anyhow::Result<()> {
    let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS]).await?;
    let mut listener = listen(&db).await?;
    let store = AggregateStore::<Product>::new(SERVICE, db.pool.clone(), ())
        .with_relay_wake(RelayWake::default());
    append_three_events(&store).await?;
    assert!(
        notified_within(&mut listener, Duration::from_secs(10)).await?,
        "an append sent no NOTIFY, though no relay of its process leads"
    );
    Ok(())
}

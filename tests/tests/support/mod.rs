//! The whole stack in one process: inventory, the projection worker, catalog and
//! the gateway, each on port 0, with databases and streams of their own.

use clap::Parser;
use platform::testing::{test_namespace, TestDb};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running stack, stopped when dropped.
pub struct Stack {
    /// The gateway's base URL.
    pub gateway: String,
    /// The inventory event store.
    pub inventory_db: TestDb,
    /// The read models, kept alive for the services.
    pub _read_db: TestDb,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Stack {
    /// Starts every service and waits until the gateway answers.
    pub async fn start() -> Self {
        let inventory_db = TestDb::new(&[]).await.expect("inventory database");
        let read_db = TestDb::new(&[]).await.expect("read-model database");
        let namespace = test_namespace();
        let nats = platform::testing::nats_url();
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        let inventory = inventory::build(parse(&[
            "inventory",
            "--addr=127.0.0.1:0",
            &format!("--inventory-database-url={}", inventory_db.url()),
            &format!("--nats-url={nats}"),
            &format!("--stream-namespace={namespace}"),
        ]))
        .await
        .expect("inventory service");
        let inventory_url = format!("http://127.0.0.1:{}", inventory.port());
        tasks.push(tokio::spawn(inventory.run(shutdown.clone())));

        let worker = projections::build(parse(&[
            "projection-worker",
            "--addr=127.0.0.1:0",
            &format!("--projections-database-url={}", read_db.url()),
            &format!("--nats-url={nats}"),
            &format!("--stream-namespace={namespace}"),
        ]))
        .await
        .expect("projection worker");
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));

        let catalog = catalog::build(parse(&[
            "catalog",
            "--addr=127.0.0.1:0",
            &format!("--catalog-database-url={}", read_db.url()),
        ]))
        .await
        .expect("catalog service");
        let catalog_url = format!("http://127.0.0.1:{}", catalog.port());
        tasks.push(tokio::spawn(catalog.run(shutdown.clone())));

        let gateway = gateway::build(parse(&[
            "gateway",
            "--addr=127.0.0.1:0",
            &format!("--inventory-url={inventory_url}"),
            &format!("--catalog-url={catalog_url}"),
        ]))
        .await
        .expect("gateway");
        let gateway_url = format!("http://127.0.0.1:{}", gateway.port());
        tasks.push(tokio::spawn(gateway.run(shutdown.clone())));

        Self {
            gateway: gateway_url,
            inventory_db,
            _read_db: read_db,
            shutdown,
            tasks,
        }
    }

    /// Stops every service and reports any that failed.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.await
                .expect("service task")
                .expect("service stopped cleanly");
        }
    }

    /// How many events the inventory event store holds.
    pub async fn stored_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.inventory_db.pool)
            .await
            .expect("count events")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn parse<C: Parser>(args: &[&str]) -> C {
    C::try_parse_from(args).expect("test configuration")
}

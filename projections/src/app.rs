//! The projection worker process: its settings, its database, its consumers and
//! its health endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream;
use clap::Parser;
use platform::config::CommonArgs;
use platform::consumer::{Consumer, ConsumerConfig, Handler};
use platform::db::{self, READ_MODEL_DB, READ_MODEL_MIGRATIONS};
use platform::http::{health_router, with_common_layers, Readiness};
use platform::service::Service;
use sqlx::PgPool;

use crate::customers::{self, CustomersProjection};
use crate::notifications::{self, NotificationsProjection};
use crate::orders::{self, OrdersProjection};
use crate::payments::{self, PaymentsProjection};
use crate::products::{self, ProductsProjection};
use crate::MIGRATIONS;

/// Connections of the worker's pool: one per consumer, which holds it while it
/// applies a batch, and a few for `/readyz` and start-up.
const POOL_SIZE: u32 = 12;

/// Settings of the projection worker, each an environment variable with a local default.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "projection-worker",
    about = "Builds the read models from the JetStream streams"
)]
pub struct Config {
    /// Address of the health endpoints.
    #[arg(long, env = "PROJECTIONS_ADDR", default_value = "127.0.0.1:8090")]
    pub addr: SocketAddr,

    /// The read-model database; by default `read_models` on the `DATABASE_URL`
    /// server, created when missing.
    #[arg(long, env = "PROJECTIONS_DATABASE_URL")]
    pub projections_database_url: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// One durable consumer of the worker: the stream and aggregate type it reads and
/// the read model it feeds.
pub struct Source {
    /// The JetStream durable name, also the key of its checkpoints and offsets.
    pub durable_name: &'static str,
    /// The command service whose stream it reads, such as `orders`.
    pub service: &'static str,
    /// The aggregate type its filter subject selects, such as `Order`.
    pub aggregate_type: &'static str,
    /// The read model it writes.
    pub handler: Arc<dyn Handler>,
}

/// Every consumer of the worker. A read model fed by several streams has one
/// consumer per stream: NATS 2.9 honours one filter subject per consumer, and each
/// consumer keeps its own stream's per-aggregate order. Every filter selects whole
/// aggregates, so each consumer checks for gaps in their sequences.
pub fn sources() -> Vec<Source> {
    let customers: Arc<dyn Handler> = Arc::new(CustomersProjection);
    let notifications: Arc<dyn Handler> = Arc::new(NotificationsProjection);
    let source = |durable_name, service, aggregate_type, handler| Source {
        durable_name,
        service,
        aggregate_type,
        handler,
    };
    vec![
        source(
            products::DURABLE_NAME,
            "inventory",
            "Product",
            Arc::new(ProductsProjection),
        ),
        source(
            orders::DURABLE_NAME,
            "orders",
            "Order",
            Arc::new(OrdersProjection),
        ),
        source(
            customers::FROM_CUSTOMERS,
            "customers",
            "Customer",
            customers.clone(),
        ),
        source(customers::FROM_ORDERS, "orders", "Order", customers.clone()),
        source(customers::FROM_PAYMENTS, "payments", "Payment", customers),
        source(
            payments::DURABLE_NAME,
            "payments",
            "Payment",
            Arc::new(PaymentsProjection),
        ),
        source(
            notifications::FROM_CUSTOMERS,
            "customers",
            "Customer",
            notifications.clone(),
        ),
        source(notifications::FROM_ORDERS, "orders", "Order", notifications),
    ]
}

impl Source {
    /// The consumer of this source in the configured stream namespace.
    fn consumer(
        self,
        jetstream: &jetstream::Context,
        pool: &PgPool,
        common: &CommonArgs,
    ) -> Consumer {
        let stream = common.stream(self.service);
        let filter_subject = format!("{}.{}.>", stream.subject_prefix, self.aggregate_type);
        let config = ConsumerConfig::new(self.durable_name, stream, filter_subject);
        Consumer::new(jetstream.clone(), pool.clone(), self.handler, config)
    }
}

/// Connects to PostgreSQL (creating and migrating the read-model database) and
/// NATS, and binds the health endpoints: a worker ready to run its consumers. If a
/// consumer dies, the whole worker stops rather than serve a read model that no
/// longer moves.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let pool = connect_database(&config).await?;
    db::migrate(&pool, &READ_MODEL_MIGRATIONS).await?;
    db::migrate(&pool, &MIGRATIONS).await?;
    let nats = platform::nats::connect(&config.common.nats_url).await?;
    let jetstream = jetstream::new(nats.clone());
    let readiness = Readiness {
        databases: vec![pool.clone()],
        nats: Some(nats),
    };
    let router = with_common_layers(health_router(readiness));
    let mut service = Service::bind("projection-worker", config.addr, router).await?;
    for source in sources() {
        let name = source.durable_name;
        let consumer = source.consumer(&jetstream, &pool, &config.common);
        service = service.with_task(name, move |shutdown| async move {
            consumer.run(shutdown).await;
            Ok(())
        });
    }
    Ok(service)
}

/// Opens the read-model database, creating it when missing. With an override URL,
/// the database is created on that URL's server, if its role may.
async fn connect_database(config: &Config) -> anyhow::Result<PgPool> {
    let common = &config.common;
    let url = config.projections_database_url.as_deref();
    let options = common.database(url, READ_MODEL_DB.name)?;
    let server = match url {
        Some(_) => options.clone().database("postgres"),
        None => common.server()?,
    };
    db::connect_or_create(&server, options, POOL_SIZE).await
}

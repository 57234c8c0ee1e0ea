//! The projection worker process: its settings, its database, its consumers and
//! its health endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use platform::config::CommonArgs;
use platform::consumer::{Consumer, ConsumerConfig};
use platform::db::{self, READ_MODEL_DB, READ_MODEL_MIGRATIONS};
use platform::http::{health_router, with_common_layers, Readiness};
use platform::service::Service;
use sqlx::PgPool;

use crate::products::{ProductsProjection, DURABLE_NAME};
use crate::MIGRATIONS;

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

/// Connects to PostgreSQL (creating and migrating the read-model database) and
/// NATS, and binds the health endpoints: a worker ready to run its consumers. If a
/// consumer dies, the whole worker stops rather than serve a read model that no
/// longer moves.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let pool = connect_database(&config).await?;
    db::migrate(&pool, &READ_MODEL_MIGRATIONS).await?;
    db::migrate(&pool, &MIGRATIONS).await?;
    let nats = platform::nats::connect(&config.common.nats_url).await?;
    let jetstream = async_nats::jetstream::new(nats.clone());

    let stream = config.common.stream("inventory");
    let filter_subject = format!("{}.Product.>", stream.subject_prefix);
    let products = Consumer::new(
        jetstream,
        pool.clone(),
        Arc::new(ProductsProjection),
        ConsumerConfig::new(DURABLE_NAME, stream, filter_subject),
    );
    let readiness = Readiness {
        databases: vec![pool],
        nats: Some(nats),
    };
    let router = with_common_layers(health_router(readiness));
    Ok(Service::bind("projection-worker", config.addr, router)
        .await?
        .with_task("products consumer", move |shutdown| async move {
            products.run(shutdown).await;
            Ok(())
        }))
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
    db::connect_or_create(&server, options, 8).await
}

//! The projection worker process: its settings, its database, its consumers and
//! its admin and health endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream;
use axum::routing::get;
use axum::Router;
use clap::Parser;
use platform::config::CommonArgs;
use platform::consumer::{ConsumerConfig, Handler};
use platform::db::{self, READ_MODEL_DB, READ_MODEL_MIGRATIONS};
use platform::dead_letters::DeadLetters;
use platform::http::{dead_letters_router, health_router, with_common_layers, Readiness};
use platform::service::Service;
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::admin::{self, AdminState, Statuses};
use crate::rebuild::{self, Requests};
use crate::supervisor::Supervisor;

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
    /// Address of the admin and health endpoints.
    #[arg(long, env = "PROJECTIONS_ADDR", default_value = "127.0.0.1:8090")]
    pub addr: SocketAddr,

    /// The read-model database; by default `read_models` on the `DATABASE_URL`
    /// server, created when missing.
    #[arg(long, env = "PROJECTIONS_DATABASE_URL")]
    pub projections_database_url: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Where one consumer of a projection reads: a durable name, a command service's
/// stream and the aggregate type its filter subject selects.
#[derive(Debug, Clone, Copy)]
pub struct SourceSpec {
    /// The JetStream durable name, also the key of its checkpoints and offsets.
    pub durable_name: &'static str,
    /// The command service whose stream it reads, such as `orders`.
    pub service: &'static str,
    /// The aggregate type its filter subject selects, such as `Order`.
    pub aggregate_type: &'static str,
    /// The event types the read model changes on, when it is some only: the
    /// consumer passes over the others without a transaction (decision 0029).
    /// `None` for every type of the aggregate.
    pub event_types: Option<&'static [&'static str]>,
    /// Whether its batches announce the aggregates they moved, for readers waiting
    /// on `?min_version=`: only where the read model's rows are those aggregates.
    pub announces: bool,
}

/// One read model of the worker: its name, its tables, the consumers that feed
/// it, and its handler.
pub struct Projection {
    /// The name the admin API and the CLI show, such as `orders`.
    pub name: &'static str,
    /// Every table the handler writes, the main one first (the admin API counts its
    /// rows). A rebuild builds and swaps exactly these.
    pub tables: &'static [&'static str],
    /// One consumer per stream the read model is fed from.
    pub sources: &'static [SourceSpec],
    /// Makes the handler that every consumer of the projection shares.
    pub handler: fn() -> Arc<dyn Handler>,
}

impl SourceSpec {
    /// The durable name of this source's consumer while its projection is rebuilt,
    /// such as `orders-rebuild`.
    pub fn rebuild_durable_name(&self) -> String {
        format!("{}-rebuild", self.durable_name)
    }

    /// The configuration of a consumer of this source under `durable_name`, in the
    /// configured stream namespace.
    pub fn consumer_config(&self, durable_name: &str, common: &CommonArgs) -> ConsumerConfig {
        let stream = common.stream(self.service);
        let filter_subject = format!("{}.{}.>", stream.subject_prefix, self.aggregate_type);
        let config = ConsumerConfig {
            announce_changes: self.announces,
            ..ConsumerConfig::new(durable_name, stream, filter_subject)
        };
        match self.event_types {
            Some(event_types) => config.only_event_types(event_types),
            None => config,
        }
    }

    /// This source, announcing nothing: the read model's rows are keyed by another
    /// aggregate than the ones it moves, or served to no one who waits on a
    /// version, so an announcement would only wake every listener for nothing.
    const fn unannounced(self) -> Self {
        Self {
            announces: false,
            ..self
        }
    }

    /// This source, handing the read model only events of these types.
    const fn only(self, event_types: &'static [&'static str]) -> Self {
        Self {
            event_types: Some(event_types),
            ..self
        }
    }
}

const fn source(
    durable_name: &'static str,
    service: &'static str,
    aggregate_type: &'static str,
) -> SourceSpec {
    SourceSpec {
        durable_name,
        service,
        aggregate_type,
        event_types: None,
        announces: true,
    }
}

/// Every projection of the worker, the one place that says which durables and
/// tables belong to which read model. A read model fed by several streams has one
/// consumer per stream: NATS 2.9 honours one filter subject per consumer, and each
/// consumer keeps its own stream's per-aggregate order.
pub const PROJECTIONS: &[Projection] = &[
    Projection {
        name: "products",
        tables: &["products"],
        sources: &[source(products::DURABLE_NAME, "inventory", "Product")],
        handler: || Arc::new(ProductsProjection),
    },
    Projection {
        name: "orders",
        tables: &["orders", "order_lines"],
        sources: &[source(orders::DURABLE_NAME, "orders", "Order")],
        handler: || Arc::new(OrdersProjection),
    },
    Projection {
        name: "customers",
        tables: &["customers", "customer_links"],
        sources: &[
            source(customers::FROM_CUSTOMERS, "customers", "Customer"),
            source(customers::FROM_ORDERS, "orders", "Order")
                .only(customers::ORDER_EVENTS)
                .unannounced(),
            source(customers::FROM_PAYMENTS, "payments", "Payment")
                .only(customers::PAYMENT_EVENTS)
                .unannounced(),
        ],
        handler: || Arc::new(CustomersProjection),
    },
    Projection {
        name: "payments",
        tables: &["payments"],
        sources: &[source(payments::DURABLE_NAME, "payments", "Payment")],
        handler: || Arc::new(PaymentsProjection),
    },
    Projection {
        name: "notifications",
        tables: &["notifications", "notification_orders"],
        sources: &[
            source(notifications::FROM_CUSTOMERS, "customers", "Customer")
                .only(notifications::CUSTOMER_EVENTS)
                .unannounced(),
            source(notifications::FROM_ORDERS, "orders", "Order")
                .only(notifications::ORDER_EVENTS)
                .unannounced(),
        ],
        handler: || Arc::new(NotificationsProjection),
    },
];

/// One durable consumer of the worker: the stream and aggregate type it reads and
/// the read model it feeds.
pub struct Source {
    /// The projection it belongs to, such as `customers`.
    pub projection: &'static str,
    /// The JetStream durable name, also the key of its checkpoints and offsets.
    pub durable_name: &'static str,
    /// The command service whose stream it reads, such as `orders`.
    pub service: &'static str,
    /// The aggregate type its filter subject selects, such as `Order`.
    pub aggregate_type: &'static str,
    /// The read model it writes.
    pub handler: Arc<dyn Handler>,
}

/// Every consumer of the worker, from [`PROJECTIONS`]. A consumer of every event
/// type of its aggregates checks for gaps in their sequences; one of some types
/// only catches lost deliveries by their numbers (decision 0026).
pub fn sources() -> Vec<Source> {
    PROJECTIONS
        .iter()
        .flat_map(|projection| {
            let handler = (projection.handler)();
            projection.sources.iter().map(move |spec| Source {
                projection: projection.name,
                durable_name: spec.durable_name,
                service: spec.service,
                aggregate_type: spec.aggregate_type,
                handler: handler.clone(),
            })
        })
        .collect()
}

/// Connects to PostgreSQL (creating and migrating the read-model database) and
/// NATS, and binds the admin and health endpoints: a worker ready to run one
/// [`Supervisor`] per projection, which runs its consumers and its rebuilds. If a
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
    rebuild::register(&pool).await?;
    let statuses = Statuses::default();
    let requests = Requests::default();
    let admin = AdminState {
        pool: pool.clone(),
        jetstream: jetstream.clone(),
        common: config.common.clone(),
        statuses: statuses.clone(),
        requests: requests.clone(),
    };
    let mut service =
        Service::bind("projection-worker", config.addr, router(admin, readiness)).await?;
    for projection in PROJECTIONS {
        let supervisor = Supervisor {
            projection,
            pool: pool.clone(),
            jetstream: jetstream.clone(),
            common: config.common.clone(),
            statuses: statuses.clone(),
            wakeup: requests.wakeup(projection.name),
        };
        service = service.with_task(projection.name, move |shutdown| supervisor.run(shutdown));
    }
    Ok(service)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Projection worker",
        description = "The state of the read models the worker builds."
    ),
    tags((name = "admin", description = "Positions, lag and status of every projection"))
)]
struct ApiDoc;

/// Every route of the worker: the admin API, its OpenAPI document at
/// `/openapi.json` (which the gateway merges), and `/healthz` and `/readyz`.
pub fn router(state: AdminState, readiness: Readiness) -> Router {
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(admin::router())
        .merge(dead_letters_router(dead_letters(&state.pool)))
        .split_for_parts();
    let openapi = axum::Json(openapi);
    let router = routes
        .with_state(state)
        .route(
            "/openapi.json",
            get(move || std::future::ready(openapi.clone())),
        )
        .merge(health_router(readiness));
    with_common_layers(router)
}

/// The worker's dead letters, each retried through the handler of the live
/// consumer that parked it.
fn dead_letters(pool: &PgPool) -> DeadLetters {
    sources()
        .into_iter()
        .fold(DeadLetters::new(pool.clone()), |letters, source| {
            letters.with_handler(source.durable_name, source.handler)
        })
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

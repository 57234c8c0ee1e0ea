//! The admin API of the projection worker against real PostgreSQL and NATS: a
//! worker on its own database and streams, fed a few product events.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use domain::inventory::ProductEvent;
use platform::config::CommonArgs;
use platform::nats::StreamSpec;
use platform::telemetry::LogFormat;
use platform::testing::{nats_url, test_namespace, TestDb};
use platform::Envelope;
use projections::Config;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn envelope(sku: &str, sequence: i64, event: &ProductEvent) -> Envelope {
    let tagged = serde_json::to_value(event).unwrap();
    let (event_type, payload) = tagged.as_object().unwrap().iter().next().unwrap();
    Envelope {
        event_id: Envelope::event_id_for("inventory", "Product", sku, sequence),
        service: "inventory".into(),
        aggregate_type: "Product".into(),
        aggregate_id: sku.into(),
        sequence,
        global_position: sequence,
        event_type: event_type.clone(),
        event_version: "1.0".into(),
        payload: payload.clone(),
        metadata: [("correlation_id".to_owned(), "test".to_owned())].into(),
        recorded_at: chrono::Utc::now(),
    }
}

fn added(sku: &str) -> Envelope {
    let event = ProductEvent::ProductAdded {
        sku: sku.into(),
        name: format!("Product {sku}"),
        price_cents: 250,
        initial_stock: 5,
    };
    envelope(sku, 1, &event)
}

async fn publish(js: &jetstream::Context, stream: &StreamSpec, envelopes: &[Envelope]) {
    platform::nats::ensure_stream(js, stream).await.unwrap();
    platform::testing::publish(js, stream, envelopes)
        .await
        .unwrap();
}

/// A running worker on a fresh database and namespace, and its base URL.
struct Worker {
    url: String,
    namespace: String,
    jetstream: jetstream::Context,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _db: TestDb,
}

impl Worker {
    async fn start() -> Self {
        let db = TestDb::new(&[]).await.unwrap();
        let namespace = test_namespace();
        let config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            projections_database_url: Some(db.url()),
            common: CommonArgs {
                database_url: db.url(),
                nats_url: nats_url(),
                stream_namespace: namespace.clone(),
                log_format: LogFormat::Pretty,
            },
        };
        let service = projections::build(config).await.unwrap();
        let url = format!("http://127.0.0.1:{}", service.port());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service.run(shutdown.clone()));
        let client = platform::nats::connect(&nats_url()).await.unwrap();
        Self {
            url,
            namespace,
            jetstream: jetstream::new(client),
            shutdown,
            task,
            _db: db,
        }
    }

    fn stream(&self, service: &str) -> StreamSpec {
        StreamSpec::in_namespace(&self.namespace, service)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// Polls a path until `done` holds for its JSON body and returns that body.
    async fn eventually(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let body: Value = self.get(path).await.json().await.unwrap();
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} stayed at {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for service in ["inventory", "customers", "orders", "payments"] {
            let name = StreamSpec::in_namespace(&self.namespace, service).name;
            let _ = self.jetstream.delete_stream(name).await;
        }
    }
}

#[tokio::test]
async fn the_products_projection_shows_what_it_applied() {
    let worker = Worker::start().await;
    let restocked = envelope("MUG-1", 2, &ProductEvent::Restocked { quantity: 3 });
    let events = [added("MUG-1"), added("PEN-1"), added("CUP-1"), restocked];
    let inventory = worker.stream("inventory");
    publish(&worker.jetstream, &inventory, &events).await;

    let products = worker
        .eventually("/api/admin/projections/products", |body| {
            body["sources"][0]["position"] == 4 && body["sources"][0]["lag"] == 0
        })
        .await;

    assert_eq!(products["name"], "products");
    assert_eq!(products["version"], 1);
    assert_eq!(products["status"], "LIVE");
    assert_eq!(products["rows"], 3);
    assert!(products["updated_at"].is_string(), "{products}");
    let source = &products["sources"][0];
    assert_eq!(source["stream"], inventory.name.as_str());
    assert_eq!(source["last_seq"], 4);
    worker.stop().await;
}

#[tokio::test]
async fn the_list_shows_every_projection_and_its_sources() {
    let worker = Worker::start().await;

    let list: Value = worker
        .get("/api/admin/projections")
        .await
        .json()
        .await
        .unwrap();

    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "products",
            "orders",
            "customers",
            "payments",
            "notifications"
        ]
    );
    let customers = &list["items"][2];
    assert_eq!(customers["sources"].as_array().unwrap().len(), 3);
    assert_eq!(customers["rows"], 0);
    assert!(customers["updated_at"].is_null());
    worker.stop().await;
}

#[tokio::test]
async fn an_unknown_projection_is_a_404_problem() {
    let worker = Worker::start().await;

    let response = worker.get("/api/admin/projections/nothing").await;

    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("application/problem+json"));
    worker.stop().await;
}

#[tokio::test]
async fn the_admin_routes_are_documented() {
    let worker = Worker::start().await;

    let openapi: Value = worker.get("/openapi.json").await.json().await.unwrap();

    assert!(openapi["paths"]["/api/admin/projections"].is_object());
    assert!(openapi["paths"]["/api/admin/projections/{name}"].is_object());
    worker.stop().await;
}

//! Rebuild throughput: events per second while the projection worker rebuilds a
//! projection from the start of its streams (`POST /api/admin/projections/{name}/
//! rebuild`, then `GET /api/admin/projections/{name}` until its version has moved
//! on and it is LIVE again).

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::http;

/// The path the rebuild endpoint has in the worker's OpenAPI document.
const REBUILD_PATH: &str = "/api/admin/projections/{name}/rebuild";

/// How long one rebuild may take before the benchmark gives up on it.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// How often the rebuild's progress is read.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// One projection as `GET /api/admin/projections/{name}` shows it.
#[derive(Debug, Deserialize)]
pub struct Projection {
    version: u32,
    status: String,
    sources: Vec<Source>,
    /// The rebuild in progress, where the worker reports one.
    #[serde(default)]
    rebuild: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Source {
    last_seq: u64,
    #[serde(default)]
    lag: u64,
}

/// Every projection, as `GET /api/admin/projections` lists them.
#[derive(Debug, Deserialize)]
struct ProjectionList {
    items: Vec<Projection>,
}

/// Waits until every projection has applied everything in its streams, so that a
/// latency measurement does not time the backlog of the load before it. Gives up
/// quietly after `timeout`.
pub async fn wait_until_caught_up(
    client: &Client,
    projections_url: &str,
    timeout: Duration,
) -> Result<(), String> {
    let url = format!("{projections_url}/api/admin/projections");
    let started = Instant::now();
    loop {
        let list: ProjectionList = http::get(client, &url).await?;
        let lag: u64 = list
            .items
            .iter()
            .flat_map(|p| &p.sources)
            .map(|source| source.lag)
            .sum();
        if lag == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "the projections still lag {lag} events after {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Projection {
    /// The events of its streams: what a rebuild from the start reads.
    pub fn events(&self) -> u64 {
        self.sources.iter().map(|source| source.last_seq).sum()
    }
}

/// How one rebuild went.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rebuilt {
    /// The projection's name.
    pub projection: String,
    /// Events in its streams when the rebuild started.
    pub events: u64,
    /// From the 202 until the new version was LIVE.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_second: f64,
}

/// Whether the worker at `projections_url` offers the rebuild endpoint: its
/// OpenAPI document names it. `Err` says why not.
pub async fn available(client: &Client, projections_url: &str) -> Result<(), String> {
    let url = format!("{projections_url}/openapi.json");
    let document: Value = http::get(client, &url).await?;
    match document
        .pointer("/paths")
        .and_then(|paths| paths.get(REBUILD_PATH))
    {
        Some(_) => Ok(()),
        None => Err(format!(
            "the projection worker has no POST {REBUILD_PATH} yet"
        )),
    }
}

/// Reads one projection's state.
pub async fn projection(
    client: &Client,
    projections_url: &str,
    name: &str,
) -> Result<Projection, String> {
    http::get(
        client,
        &format!("{projections_url}/api/admin/projections/{name}"),
    )
    .await
}

/// Rebuilds `name` and times it until its new version is LIVE.
pub async fn rebuild(
    client: &Client,
    projections_url: &str,
    name: &str,
) -> Result<Rebuilt, String> {
    let before = projection(client, projections_url, name).await?;
    let url = format!("{projections_url}/api/admin/projections/{name}/rebuild");
    let response = client
        .post(&url)
        .send()
        .await
        .map_err(|error| format!("POST {url}: {error}"))?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(format!("POST {url} answered {}", response.status()));
    }
    let started = Instant::now();
    while started.elapsed() < REBUILD_TIMEOUT {
        tokio::time::sleep(POLL_EVERY).await;
        let now = projection(client, projections_url, name).await?;
        match now.status.as_str() {
            "LIVE" if now.version > before.version && now.rebuild.is_none() => {
                let seconds = started.elapsed().as_secs_f64();
                return Ok(Rebuilt {
                    projection: name.to_owned(),
                    events: before.events(),
                    seconds,
                    events_per_second: before.events() as f64 / seconds,
                });
            }
            "FAILED" => return Err(format!("the rebuild of {name} FAILED")),
            _ => {}
        }
    }
    Err(format!(
        "the rebuild of {name} did not finish in {} s",
        REBUILD_TIMEOUT.as_secs()
    ))
}

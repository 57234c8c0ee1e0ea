//! `shop projections rebuild <name>`: starts a zero-downtime rebuild of one read
//! model and follows it with a progress bar until the new version is live.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use serde::Deserialize;

/// How often the progress is asked for.
const POLL: Duration = Duration::from_millis(250);

/// Options of `shop projections rebuild`.
#[derive(clap::Args, Debug)]
pub struct RebuildArgs {
    /// The projection to rebuild, such as `orders` (`shop projections` lists them).
    pub name: String,
}

/// The answer of `POST /api/admin/projections/{name}/rebuild`.
#[derive(Debug, Deserialize)]
struct Started {
    target_version: i32,
}

/// The part of `GET /api/admin/projections/{name}` that shows a rebuild.
#[derive(Debug, Deserialize)]
struct Projection {
    version: i32,
    status: String,
    rebuild: Option<Progress>,
}

/// A rebuild in progress.
#[derive(Debug, Deserialize)]
struct Progress {
    target_version: i32,
    sources: Vec<Source>,
}

impl Progress {
    /// Events applied and events to apply, over every stream the rebuild reads.
    fn totals(&self) -> (u64, u64) {
        let position = self.sources.iter().map(|s| s.position).sum();
        let total = self.sources.iter().map(|s| s.last_seq).sum();
        (position, total)
    }
}

/// How far the rebuild has read one stream.
#[derive(Debug, Deserialize)]
struct Source {
    position: u64,
    last_seq: u64,
}

/// Starts the rebuild (or follows the one already running) and shows its progress
/// until the rebuilt version serves.
pub async fn run(base_url: &str, args: RebuildArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .context("build an HTTP client")?;
    let base = base_url.trim_end_matches('/');
    let url = format!("{base}/api/admin/projections/{}", args.name);
    let target = start(&client, &url).await?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, {eta})",
        )
        .context("progress bar template")?,
    );
    bar.set_message(format!("{} → v{target}", args.name));
    loop {
        let projection = get(&client, &url).await?;
        if projection.version >= target {
            bar.set_position(bar.length().unwrap_or(0));
            let done = format!("{} v{} is live", args.name, projection.version);
            crate::progress::finish(&bar, done);
            return Ok(());
        }
        match projection.rebuild {
            Some(progress) if progress.target_version == target => {
                let (position, total) = progress.totals();
                bar.set_length(total);
                bar.set_position(position);
            }
            _ => {
                bar.abandon();
                anyhow::bail!(
                    "the rebuild of {} to v{target} ended without switching (status {}, version {})",
                    args.name,
                    projection.status,
                    projection.version
                );
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Requests the rebuild and returns the version it builds; a rebuild already
/// running is followed instead.
async fn start(client: &reqwest::Client, url: &str) -> anyhow::Result<i32> {
    let rebuild_url = format!("{url}/rebuild");
    let response = client.post(&rebuild_url).send().await.with_context(|| {
        format!("no answer from {rebuild_url}. Is the stack running? Start it with `shop up`.")
    })?;
    match response.status() {
        StatusCode::ACCEPTED => {
            let started: Started = response
                .json()
                .await
                .with_context(|| format!("read the answer of {rebuild_url}"))?;
            Ok(started.target_version)
        }
        StatusCode::CONFLICT => {
            let running = get(client, url).await?.rebuild;
            let progress = running.context("a rebuild was running and has just ended")?;
            eprintln!("a rebuild is already running; following it");
            Ok(progress.target_version)
        }
        status => {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("{rebuild_url} answered {status}: {}", body.trim())
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<Projection> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("no answer from {url}"))?;
    crate::http::json_answer(response, url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_every_stream_of_the_rebuild() {
        let answer = serde_json::json!({
            "name": "customers", "version": 1, "status": "REBUILDING", "rows": 3,
            "updated_at": null, "sources": [],
            "rebuild": {"target_version": 2, "started_at": "2026-01-01T00:00:00Z", "sources": [
                {"stream": "CUSTOMERS", "position": 7, "last_seq": 7, "lag": 0},
                {"stream": "ORDERS", "position": 100, "last_seq": 125, "lag": 25}]}
        });
        let projection: Projection = serde_json::from_value(answer).unwrap();
        let progress = projection.rebuild.unwrap();
        assert_eq!(progress.target_version, 2);
        assert_eq!(progress.totals(), (107, 132));
    }
}

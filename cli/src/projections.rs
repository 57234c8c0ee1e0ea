//! `shop projections`: the read models of a running stack, with their status,
//! positions, lag and rows, asked through its gateway; `shop projections rebuild`
//! rebuilds one.

mod rebuild;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Options of `shop projections`.
#[derive(clap::Args, Debug)]
pub struct ProjectionsArgs {
    /// Base URL of the running stack's gateway.
    #[arg(
        long,
        env = "SHOP_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,

    /// Print the gateway's JSON answer as it is.
    #[arg(long)]
    pub json: bool,

    #[command(subcommand)]
    pub action: Option<ProjectionsAction>,
}

/// What `shop projections` does besides listing.
#[derive(clap::Subcommand, Debug)]
pub enum ProjectionsAction {
    /// Rebuild a read model from the start of its streams with no downtime.
    ///
    /// A new version is built beside the live one, which keeps answering queries,
    /// and replaces it atomically once it has caught up. A progress bar follows it
    /// until the new version is live; a rebuild already running is followed
    /// instead. A worker that crashes mid-rebuild resumes it when it starts again.
    Rebuild(rebuild::RebuildArgs),

    /// Replay a read model's events into a scratch database and diff it with the live one.
    ///
    /// Reads the projection's streams from NATS (DeliverAll, in STREAM_NAMESPACE)
    /// up to what the live read model has applied, applies them with the current
    /// projection code to a database created (and dropped) on the DATABASE_URL
    /// server, and prints every row added, removed or changed, by primary key.
    /// Exits 0 when the two are identical and 1 when they differ.
    Diff(crate::diff::DiffArgs),
}

/// The answer of `GET /api/admin/projections`.
#[derive(Debug, Deserialize)]
struct ProjectionList {
    items: Vec<Projection>,
}

/// One projection, as far as the table shows it.
#[derive(Debug, Deserialize)]
struct Projection {
    name: String,
    version: u32,
    status: String,
    sources: Vec<Source>,
    rows: i64,
}

/// One stream a projection reads.
#[derive(Debug, Deserialize)]
struct Source {
    stream: String,
    position: u64,
    lag: u64,
}

/// Asks the gateway for every projection and prints them as a table, or as JSON.
pub async fn run(args: ProjectionsArgs) -> anyhow::Result<ExitCode> {
    if let Some(ProjectionsAction::Diff(diff)) = args.action {
        return crate::diff::run(diff).await;
    }
    if let Some(ProjectionsAction::Rebuild(rebuild)) = args.action {
        rebuild::run(&args.url, rebuild).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .context("build an HTTP client")?;
    let url = format!("{}/api/admin/projections", args.url.trim_end_matches('/'));
    let response = client.get(&url).send().await.with_context(|| {
        format!("no answer from {url}. Is the stack running? Start it with `shop up`.")
    })?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("read the answer of {url}"))?;
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", body.trim());
    }
    if args.json {
        println!("{}", body.trim());
        return Ok(ExitCode::SUCCESS);
    }
    let list: ProjectionList =
        serde_json::from_str(&body).with_context(|| format!("read the answer of {url}"))?;
    print!("{}", table(&list));
    Ok(ExitCode::SUCCESS)
}

/// The projections as aligned columns, one line per source: a projection fed by
/// several streams repeats its name on each, with its other columns on the first.
fn table(list: &ProjectionList) -> String {
    let header = [
        "NAME", "VERSION", "STATUS", "STREAM", "POSITION", "LAG", "ROWS",
    ];
    let mut lines: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    for projection in &list.items {
        let first_only =
            |index: usize, value: String| if index == 0 { value } else { String::new() };
        if projection.sources.is_empty() {
            lines.push([
                projection.name.clone(),
                projection.version.to_string(),
                projection.status.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                projection.rows.to_string(),
            ]);
        }
        for (index, source) in projection.sources.iter().enumerate() {
            lines.push([
                projection.name.clone(),
                first_only(index, projection.version.to_string()),
                first_only(index, projection.status.clone()),
                source.stream.clone(),
                source.position.to_string(),
                source.lag.to_string(),
                first_only(index, projection.rows.to_string()),
            ]);
        }
    }
    let mut widths = [0; 7];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .enumerate()
            // Text columns are left-aligned, numbers right-aligned.
            .map(|(column, (cell, width))| match column {
                0 | 2 | 3 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> ProjectionList {
        serde_json::from_value(serde_json::json!({"items": [
            {"name": "products", "version": 1, "status": "LIVE", "rows": 12,
             "updated_at": null,
             "sources": [{"stream": "INVENTORY", "position": 40, "last_seq": 40, "lag": 0}]},
            {"name": "customers", "version": 1, "status": "FAILED", "rows": 3,
             "updated_at": "2026-01-01T00:00:00Z",
             "sources": [
                {"stream": "CUSTOMERS", "position": 7, "last_seq": 7, "lag": 0},
                {"stream": "ORDERS", "position": 120, "last_seq": 125, "lag": 5}]}
        ]}))
        .unwrap()
    }

    #[test]
    fn the_table_has_one_aligned_line_per_source() {
        let expected = "\
NAME       VERSION  STATUS  STREAM     POSITION  LAG  ROWS
products         1  LIVE    INVENTORY        40    0    12
customers        1  FAILED  CUSTOMERS         7    0     3
customers                   ORDERS          120    5
";
        assert_eq!(table(&list()), expected);
    }
}

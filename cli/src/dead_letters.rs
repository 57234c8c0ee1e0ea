//! `shop dead-letters`: the events that a running stack's consumers parked after
//! their last attempt, asked through its gateway, and `shop dead-letters retry`,
//! which applies one again once its cause is fixed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// How many characters of an error the table shows.
const ERROR_WIDTH: usize = 60;

/// Options of `shop dead-letters`.
#[derive(clap::Args, Debug)]
pub struct DeadLettersArgs {
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
    pub action: Option<DeadLettersAction>,
}

/// What `shop dead-letters` does besides listing.
#[derive(clap::Subcommand, Debug)]
pub enum DeadLettersAction {
    /// Apply a dead letter's event again through the handler that parked it.
    ///
    /// On success the dead letter is gone. If the handler fails again, it is kept
    /// with the new error and shop exits non-zero.
    Retry {
        /// The service that holds it, as the list shows: inventory, orders,
        /// payments or projections.
        service: String,
        /// The dead letter's id, as the list shows.
        id: i64,
    },
}

/// The answer of `GET /api/admin/dead-letters` at the gateway.
#[derive(Debug, Deserialize)]
struct DeadLetterList {
    items: Vec<DeadLetter>,
    #[serde(default)]
    errors: Vec<ServiceError>,
}

/// One dead letter, as far as the table shows it.
#[derive(Debug, Deserialize)]
struct DeadLetter {
    service: String,
    id: i64,
    consumer: String,
    event_id: String,
    event_type: String,
    attempts: i32,
    parked_at: String,
    error: String,
}

/// A service that did not list its dead letters.
#[derive(Debug, Deserialize)]
struct ServiceError {
    service: String,
    detail: String,
}

/// Lists the dead letters as a table (or JSON), or retries one.
pub async fn run(args: DeadLettersArgs) -> anyhow::Result<ExitCode> {
    let base = args.url.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("build an HTTP client")?;
    if let Some(DeadLettersAction::Retry { service, id }) = args.action {
        return retry(&client, base, &service, id).await;
    }
    let url = format!("{base}/api/admin/dead-letters");
    let body = send(client.get(&url), &url).await?;
    if args.json {
        println!("{}", body.trim());
        return Ok(ExitCode::SUCCESS);
    }
    let list: DeadLetterList =
        serde_json::from_str(&body).with_context(|| format!("read the answer of {url}"))?;
    for error in &list.errors {
        eprintln!(
            "warning: {} did not list its dead letters: {}",
            error.service, error.detail
        );
    }
    if list.items.is_empty() {
        println!("No dead letters.");
    } else {
        print!("{}", table(&list.items));
    }
    Ok(ExitCode::SUCCESS)
}

async fn retry(
    client: &reqwest::Client,
    base: &str,
    service: &str,
    id: i64,
) -> anyhow::Result<ExitCode> {
    let url = format!("{base}/api/admin/dead-letters/{service}/{id}/retry");
    send(client.post(&url), &url).await?;
    println!("Dead letter {id} of {service} applied; it is gone from the list.");
    Ok(ExitCode::SUCCESS)
}

/// Sends the request and returns the body of a 2xx answer; any other answer is an
/// error that quotes the problem's detail.
async fn send(request: reqwest::RequestBuilder, url: &str) -> anyhow::Result<String> {
    let response = request.send().await.with_context(|| {
        format!("no answer from {url}. Is the stack running? Start it with `shop up`.")
    })?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("read the answer of {url}"))?;
    if !status.is_success() {
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|problem| problem["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_owned());
        anyhow::bail!("{url} answered {status}: {detail}");
    }
    Ok(body)
}

/// The dead letters as aligned columns, each error cut to one short line.
fn table(items: &[DeadLetter]) -> String {
    let header = [
        "SERVICE",
        "ID",
        "CONSUMER",
        "EVENT",
        "AGGREGATE",
        "ATTEMPTS",
        "PARKED_AT",
        "ERROR",
    ];
    let mut lines: Vec<[String; 8]> = vec![header.map(str::to_owned)];
    for item in items {
        lines.push([
            item.service.clone(),
            item.id.to_string(),
            item.consumer.clone(),
            item.event_type.clone(),
            aggregate_of(&item.event_id),
            item.attempts.to_string(),
            item.parked_at.clone(),
            truncate(&item.error, ERROR_WIDTH),
        ]);
    }
    let mut widths = [0; 8];
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
            // Numbers are right-aligned, text left-aligned.
            .map(|(column, (cell, width))| match column {
                1 | 5 => format!("{cell:>width$}"),
                _ => format!("{cell:<width$}"),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `Order:<id>:<sequence>` from an event id `<service>:Order:<id>:<sequence>`.
fn aggregate_of(event_id: &str) -> String {
    event_id
        .split_once(':')
        .map_or(event_id, |(_, rest)| rest)
        .to_owned()
}

/// The first line of `text`, at most `width` characters, with `…` when cut.
fn truncate(text: &str, width: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= width && line.len() == text.len() {
        return line.to_owned();
    }
    let cut: String = line.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_one_line_per_dead_letter_with_a_short_error() {
        let list: DeadLetterList = serde_json::from_value(serde_json::json!({"items": [
            {"service": "payments", "id": 3, "consumer": "payments-from-orders",
             "event_id": "orders:Order:0190:4", "event_type": "OrderStockReserved",
             "aggregate_type": "Order", "aggregate_id": "0190", "sequence": 4,
             "stream_seq": 17, "attempts": 8, "first_failed_at": "2026-01-01T00:00:00Z",
             "parked_at": "2026-01-01T00:00:13Z",
             "error": "apply event orders:Order:0190:4: the customer's credit could not be loaded because the database said no"}
        ], "errors": []}))
        .unwrap();
        let expected = "\
SERVICE   ID  CONSUMER              EVENT               AGGREGATE     ATTEMPTS  PARKED_AT             ERROR
payments   3  payments-from-orders  OrderStockReserved  Order:0190:4         8  2026-01-01T00:00:13Z  apply event orders:Order:0190:4: the customer's credit coul…
";
        assert_eq!(table(&list.items), expected);
        assert!(list.errors.is_empty());
    }

    #[test]
    fn a_multi_line_error_is_cut_to_its_first_line() {
        assert_eq!(truncate("first\nsecond", 60), "first…");
        assert_eq!(truncate("short", 60), "short");
    }
}

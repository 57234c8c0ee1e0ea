//! `shop relay republish <service>`: asks a command service's relay to republish its
//! whole event log into its stream (after the stream was lost or purged), and
//! follows it with a progress bar until the stream holds the whole log.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use platform::relay::{RepublishProgress, RepublishStatus};

/// How often the progress is asked for.
const POLL: Duration = Duration::from_millis(250);

/// Options of `shop relay`.
#[derive(clap::Args, Debug)]
pub struct RelayArgs {
    /// Base URL of the running stack's gateway.
    #[arg(
        long,
        env = "SHOP_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,

    #[command(subcommand)]
    pub action: RelayAction,
}

/// What `shop relay` does.
#[derive(clap::Subcommand, Debug)]
pub enum RelayAction {
    /// Republish a service's whole event log into its stream, with a progress bar.
    ///
    /// For a stream that was lost, purged or holds only part of the log. A stream
    /// that holds a prefix of the log is completed after it; any other is emptied
    /// and refilled. Either way it ends with exactly one message per event, in log
    /// order, so running it twice is safe. Consumers catch up on their own and
    /// skip the events they have applied.
    Republish {
        /// The command service: customers, inventory, orders or payments.
        #[arg(value_parser = ["customers", "inventory", "orders", "payments"])]
        service: String,
    },
}

/// Runs `shop relay`.
pub async fn run(args: RelayArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        RelayAction::Republish { service } => republish(&args.url, &service).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Requests the republish and shows its progress until it is done.
async fn republish(base_url: &str, service: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .context("build an HTTP client")?;
    let url = format!(
        "{}/api/admin/relay/{service}/republish",
        base_url.trim_end_matches('/')
    );
    let response = client.post(&url).send().await.with_context(|| {
        format!("no answer from {url}. Is the stack running? Start it with `shop up`.")
    })?;
    let started: RepublishProgress = crate::http::json_answer(response, &url).await?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, {eta})",
        )
        .context("progress bar template")?,
    );
    bar.set_message(format!("{service} → {}", started.stream));
    loop {
        let response = client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("no answer from {url}"))?;
        let progress: RepublishProgress = crate::http::json_answer(response, &url).await?;
        bar.set_length(u64::try_from(progress.total).unwrap_or(0));
        bar.set_position(u64::try_from(progress.published).unwrap_or(0));
        if progress.status == RepublishStatus::Done {
            let how = if progress.recreated {
                "emptied and refilled"
            } else {
                "completed"
            };
            let done = format!(
                "{}: {how}, it holds all {} events",
                progress.stream, progress.total
            );
            crate::progress::finish(&bar, done);
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Shop {
        #[command(flatten)]
        relay: RelayArgs,
    }

    #[test]
    fn republish_takes_a_command_service_by_name() {
        let parsed = Shop::try_parse_from(["shop", "republish", "orders"]).expect("parses");
        let RelayAction::Republish { service } = parsed.relay.action;
        assert_eq!(service, "orders");
        assert!(Shop::try_parse_from(["shop", "republish", "catalog"]).is_err());
        assert!(Shop::try_parse_from(["shop", "republish"]).is_err());
    }
}

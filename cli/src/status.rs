//! `shop status`: whether a running stack answers, asked through its gateway.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

/// Options of `shop status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Base URL of the running stack's gateway.
    #[arg(long, env = "SHOP_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// Asks the gateway's `/readyz` and prints the answer; fails unless it is ready.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .context("build an HTTP client")?;
    let url = format!("{}/readyz", args.url.trim_end_matches('/'));
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => {
            println!("ready: {url} answered {}", response.status());
            Ok(ExitCode::SUCCESS)
        }
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            println!("not ready: {url} answered {status}: {}", body.trim());
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            println!(
                "no answer from {url} ({error}). Is the stack running? Start it with `shop up`."
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

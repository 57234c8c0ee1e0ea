//! Reading the gateway's answers.

use anyhow::Context;
use serde::de::DeserializeOwned;

/// The JSON of a successful answer; an error with the answer's text otherwise.
pub async fn json_answer<T: DeserializeOwned>(
    response: reqwest::Response,
    url: &str,
) -> anyhow::Result<T> {
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("{url} answered {status}: {}", body.trim());
    }
    response
        .json()
        .await
        .with_context(|| format!("read the answer of {url}"))
}

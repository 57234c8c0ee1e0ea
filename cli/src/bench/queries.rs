//! Query throughput: reads of one product or one order by key, from N clients,
//! straight to the query service or through the gateway.

use std::sync::Arc;

use reqwest::Client;
use serde::de::IgnoredAny;

use super::http;
use super::load::{self, Recorder, Window};

/// Reads `{base_url}/{key}` for keys taken round-robin from `keys`, from `clients`
/// clients for `window`. The answer is read whole but not kept.
pub async fn by_key(
    client: &Client,
    base_url: String,
    keys: Arc<Vec<String>>,
    clients: usize,
    window: Window,
) -> Recorder {
    let client = client.clone();
    load::closed_loop_recorded(clients, window, move |index| {
        let client = client.clone();
        let key = &keys[(index % keys.len().max(1) as u64) as usize];
        let url = format!("{base_url}/{key}");
        async move { http::get::<IgnoredAny>(&client, &url).await.map(|_| ()) }
    })
    .await
}

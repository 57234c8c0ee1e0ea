//! The merged OpenAPI document: each service documents its own routes, and the
//! gateway joins them into one at `/api/openapi.json`.

use axum::extract::State;
use platform::http::{ApiError, Json};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa::OpenApi as _;

use crate::Upstreams;

/// Fetches every service's document and merges them. A service that is down is
/// left out, so the docs page still shows the rest.
pub async fn merged(State(upstreams): State<Upstreams>) -> Result<Json<OpenApi>, ApiError> {
    let mut merged = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Shop API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Every route of the shop, as the gateway serves it. Commands go to the \
                     command services, queries to the query services.",
                ))
                .build(),
        )
        .build();
    merged.merge(crate::trace::TraceDoc::openapi());
    merged.merge(crate::relay::RelayDoc::openapi());
    merged.merge(crate::dead_letters::DeadLettersDoc::openapi());
    let client = reqwest::Client::new();
    for base in upstreams.documented() {
        match fetch(&client, base).await {
            Ok(mut document) => {
                crate::dead_letters::remove_service_routes(&mut document);
                merged.merge(document)
            }
            Err(error) => {
                tracing::warn!(%base, error = format!("{error:#}"), "OpenAPI document left out")
            }
        }
    }
    Ok(Json(merged))
}

async fn fetch(client: &reqwest::Client, base: &str) -> anyhow::Result<OpenApi> {
    let document = client
        .get(format!("{base}/openapi.json"))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(document)
}

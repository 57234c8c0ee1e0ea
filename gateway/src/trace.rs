//! `GET /api/trace/{correlation_id}`: every event of one request, from every command
//! service, in causal order. The saga as a story.

use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use platform::http::{ApiError, Json, Path};
use platform::trace::{causal_order, Trace, EVENTS_BY_CORRELATION_PATH};

use crate::Upstreams;

/// How long one command service may take to list its events of a request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Every event of one request across the command services, each after the event
/// that caused it.
#[utoipa::path(
    get, path = "/api/trace/{correlation_id}", tag = "trace",
    params(("correlation_id" = String, Path, description = "The request id (X-Request-Id) that started the chain")),
    responses(
        (status = 200, description = "The events of the request, in causal order", body = Trace),
        (status = 404, description = "No event carries this correlation id", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A command service did not answer", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn trace(
    State(upstreams): State<Upstreams>,
    Path(correlation_id): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(FETCH_TIMEOUT)
        .build()
        .context("build an HTTP client")?;
    let fetch = |service: &'static str, base: &str| {
        let url = format!("{base}{EVENTS_BY_CORRELATION_PATH}");
        let (client, correlation_id) = (&client, correlation_id.as_str());
        async move {
            events_of(client, &url, correlation_id)
                .await
                .map_err(|error| {
                    tracing::warn!(service, error = format!("{error:#}"), "trace incomplete");
                    ApiError::unavailable(format!(
                        "the {service} service did not list its events, so the trace would be incomplete"
                    ))
                })
        }
    };
    let (customers, inventory, orders, payments) = tokio::try_join!(
        fetch("customers", &upstreams.customers),
        fetch("inventory", &upstreams.inventory),
        fetch("orders", &upstreams.orders),
        fetch("payments", &upstreams.payments),
    )?;
    let events: Vec<_> = [customers, inventory, orders, payments]
        .into_iter()
        .flatten()
        .collect();
    if events.is_empty() {
        return Err(ApiError::not_found(format!(
            "no event carries correlation id {correlation_id}"
        )));
    }
    Ok(Json(Trace {
        correlation_id,
        events: causal_order(events),
    }))
}

/// One command service's events of the request.
async fn events_of(
    client: &reqwest::Client,
    base_url: &str,
    correlation_id: &str,
) -> anyhow::Result<Vec<platform::Envelope>> {
    let mut url =
        reqwest::Url::parse(base_url).with_context(|| format!("{base_url} is not a URL"))?;
    url.query_pairs_mut()
        .append_pair("correlation_id", correlation_id);
    let trace: Trace = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("read the answer of {url}"))?;
    Ok(trace.events)
}

/// The gateway's own routes in the merged OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(trace), components(schemas(Trace, platform::Envelope)))]
pub struct TraceDoc;

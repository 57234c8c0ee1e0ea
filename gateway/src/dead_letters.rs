//! `/api/admin/dead-letters` at the gateway: the dead letters of every service that
//! runs consumers, in one list, and the retry of one of them, sent on to the
//! service that parked it.

use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Response, StatusCode};
use platform::dead_letters::{DeadLetter, DeadLetterList};
use platform::http::{ApiError, Json, Path, REQUEST_ID};
use serde::{Deserialize, Serialize};

use crate::Upstreams;

/// How long one service may take to list or retry its dead letters.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// One dead letter with the service that holds it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceDeadLetter {
    /// The service whose consumer parked it: `inventory`, `orders`, `payments` or
    /// `projections`. The retry path names it.
    pub service: String,
    /// The dead letter, as that service lists it.
    #[serde(flatten)]
    pub dead_letter: DeadLetter,
}

/// A service that did not list its dead letters.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceError {
    /// The service, such as `payments`.
    pub service: String,
    /// What went wrong.
    pub detail: String,
}

/// The dead letters of every service, oldest first. A service that is down is
/// listed in `errors` and its dead letters are missing, so that one outage does
/// not hide the others' dead letters.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceDeadLetterList {
    /// Every dead letter that could be read, oldest first.
    pub items: Vec<ServiceDeadLetter>,
    /// The services that did not answer; empty when the list is whole.
    pub errors: Vec<ServiceError>,
}

/// The services that run consumers, by the name the retry path uses.
fn services(upstreams: &Upstreams) -> [(&'static str, &str); 4] {
    [
        ("inventory", &upstreams.inventory),
        ("orders", &upstreams.orders),
        ("payments", &upstreams.payments),
        ("projections", &upstreams.projections),
    ]
}

fn client() -> Result<reqwest::Client, ApiError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(UPSTREAM_TIMEOUT)
        .build()
        .context("build an HTTP client")?;
    Ok(client)
}

/// Lists the dead letters of every service that runs consumers.
#[utoipa::path(
    get, path = "/api/admin/dead-letters", tag = "admin",
    responses(
        (status = 200, description = "Every service's dead letters, and the services that did not answer", body = ServiceDeadLetterList),
    )
)]
pub async fn list(
    State(upstreams): State<Upstreams>,
    headers: HeaderMap,
) -> Result<Json<ServiceDeadLetterList>, ApiError> {
    let client = client()?;
    let request_id = headers.get(&REQUEST_ID).cloned();
    let fetch = |service: &'static str, base: &str| {
        let url = format!("{base}/api/admin/dead-letters");
        let (client, request_id) = (&client, request_id.clone());
        async move { (service, dead_letters_of(client, &url, request_id).await) }
    };
    let [inventory, orders, payments, projections] = services(&upstreams);
    let answers = tokio::join!(
        fetch(inventory.0, inventory.1),
        fetch(orders.0, orders.1),
        fetch(payments.0, payments.1),
        fetch(projections.0, projections.1),
    );
    let mut list = ServiceDeadLetterList {
        items: Vec::new(),
        errors: Vec::new(),
    };
    for (service, answer) in [answers.0, answers.1, answers.2, answers.3] {
        match answer {
            Ok(letters) => {
                list.items
                    .extend(letters.into_iter().map(|dead_letter| ServiceDeadLetter {
                        service: service.to_owned(),
                        dead_letter,
                    }))
            }
            Err(error) => {
                let detail = format!("{error:#}");
                tracing::warn!(service, %detail, "dead letters not listed");
                list.errors.push(ServiceError {
                    service: service.to_owned(),
                    detail,
                });
            }
        }
    }
    list.items
        .sort_by_key(|item| (item.dead_letter.parked_at, item.dead_letter.id));
    Ok(Json(list))
}

async fn dead_letters_of(
    client: &reqwest::Client,
    url: &str,
    request_id: Option<axum::http::HeaderValue>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut request = client.get(url);
    if let Some(request_id) = request_id {
        request = request.header(REQUEST_ID, request_id);
    }
    let list: DeadLetterList = request
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("read the answer of {url}"))?;
    Ok(list.items)
}

/// Retries one dead letter in the service that parked it; the answer is that
/// service's.
#[utoipa::path(
    post, path = "/api/admin/dead-letters/{service}/{id}/retry", tag = "admin",
    params(
        ("service" = String, Path, description = "The service that holds the dead letter, such as `payments`"),
        ("id" = i64, Path, description = "The dead letter's id in that service"),
    ),
    responses(
        (status = 200, description = "The event was applied; the dead letter is gone", body = DeadLetter),
        (status = 404, description = "No such service, or no dead letter has this id", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The handler failed again; the dead letter is kept with the new error", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The service did not answer", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry(
    State(upstreams): State<Upstreams>,
    Path((service, id)): Path<(String, i64)>,
    headers: HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let Some((_, base)) = services(&upstreams)
        .into_iter()
        .find(|(name, _)| *name == service)
    else {
        return Err(ApiError::not_found(format!(
            "no service named {service} keeps dead letters; use inventory, orders, payments or projections"
        )));
    };
    let url = format!("{base}/api/admin/dead-letters/{id}/retry");
    let mut request = client()?.post(&url);
    if let Some(request_id) = headers.get(&REQUEST_ID) {
        request = request.header(REQUEST_ID, request_id);
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(%service, %error, "dead-letter retry not delivered");
            return Err(bad_gateway(&service));
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%service, %error, "dead-letter retry answer lost");
            return Err(bad_gateway(&service));
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}

fn bad_gateway(service: &str) -> ApiError {
    ApiError::bad_gateway(format!("the {service} service did not answer"))
}

/// The gateway's own dead-letter routes in the merged OpenAPI document; they
/// replace the ones each service documents for itself.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, retry),
    components(schemas(ServiceDeadLetterList, ServiceDeadLetter, ServiceError, DeadLetter))
)]
pub struct DeadLettersDoc;

/// Takes the services' own dead-letter routes out of a service's OpenAPI document:
/// at the gateway, [`DeadLettersDoc`] describes them.
pub fn remove_service_routes(document: &mut utoipa::openapi::OpenApi) {
    document
        .paths
        .paths
        .retain(|path, _| !path.starts_with("/api/admin/dead-letters"));
}

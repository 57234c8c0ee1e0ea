//! `/api/admin/projections`: what each read model is, whether its consumers run,
//! how far each has read its streams, and how many rows it holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use async_nats::jetstream::{self, context::GetStreamErrorKind, ErrorCode};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform::config::CommonArgs;
use platform::http::{ApiError, Json, Path};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{Projection, SourceSpec, PROJECTIONS};
use crate::rebuild::{self, BeginError, Requests};

/// Whether a projection's consumers are applying events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Every consumer of the projection runs.
    Live,
    /// The live version serves and is kept up to date while a new version is
    /// built beside it.
    Rebuilding,
    /// A consumer ended on its own: the read model no longer moves.
    Failed,
    /// The worker is shutting down.
    Stopped,
}

/// The status of every projection, set by the worker as its consumers start and
/// end, and read by the admin routes.
#[derive(Debug, Clone, Default)]
pub struct Statuses(Arc<Mutex<HashMap<&'static str, Status>>>);

impl Statuses {
    /// Records a projection's status. `FAILED` stays: a failed consumer's
    /// projection is not made healthy by the others stopping cleanly.
    pub fn set(&self, projection: &'static str, status: Status) {
        // The map holds plain values, so one left by a panicking writer is still whole.
        let mut statuses = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let current = statuses.entry(projection).or_insert(status);
        if *current != Status::Failed {
            *current = status;
        }
    }

    /// A projection's status; `LIVE` until the worker records another.
    pub fn get(&self, projection: &str) -> Status {
        let statuses = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        statuses.get(projection).copied().unwrap_or(Status::Live)
    }
}

/// What the admin routes read: the read-model database, JetStream, the stream
/// namespace and the consumers' statuses.
#[derive(Clone)]
pub struct AdminState {
    /// The read-model database, which holds the checkpoints.
    pub pool: PgPool,
    /// JetStream, for the streams' and consumers' positions.
    pub jetstream: jetstream::Context,
    /// The settings that name the streams.
    pub common: CommonArgs,
    /// The consumers' statuses.
    pub statuses: Statuses,
    /// Where rebuild requests go.
    pub requests: Requests,
}

/// How far one consumer of a projection has read its stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SourceProgress {
    /// The stream's name, such as `ORDERS`.
    pub stream: String,
    /// The stream sequence of the last batch applied; 0 before the first.
    pub position: u64,
    /// The stream's last sequence; 0 while the stream does not exist.
    pub last_seq: u64,
    /// Events of the consumer's subject not yet applied and acked. JetStream's
    /// count for the consumer (`num_pending + num_ack_pending`) when it exists,
    /// since `last_seq` may count other subjects' messages that this consumer
    /// never reads; `last_seq - position` before the consumer is created.
    pub lag: u64,
}

/// A rebuild in progress: the version it builds and how far it has read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RebuildProgress {
    /// The version being built; it replaces the live one when it has caught up.
    pub target_version: i32,
    /// One entry per stream, for the rebuild's own consumers.
    pub sources: Vec<SourceProgress>,
    /// When the rebuild was requested.
    pub started_at: DateTime<Utc>,
}

/// A rebuild just started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RebuildStarted {
    /// The projection's name.
    pub name: String,
    /// The live version, which keeps serving until the switch.
    pub version: i32,
    /// The version being built.
    pub target_version: i32,
    /// When the rebuild was requested.
    pub started_at: DateTime<Utc>,
}

/// One projection: its read model's version and state, and its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectionInfo {
    /// The projection's name, such as `orders`.
    pub name: String,
    /// The live version of its read model: 1, then one more after each rebuild.
    pub version: i32,
    /// Whether its consumers run.
    pub status: Status,
    /// One entry per stream it reads.
    pub sources: Vec<SourceProgress>,
    /// Rows in its main table.
    pub rows: i64,
    /// When one of its consumers last committed a batch; null before the first.
    pub updated_at: Option<DateTime<Utc>>,
    /// The rebuild in progress; null when there is none.
    pub rebuild: Option<RebuildProgress>,
}

/// Every projection of the worker.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectionList {
    /// The projections, in a fixed order.
    pub items: Vec<ProjectionInfo>,
}

/// The routes of this resource, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_projections))
        .routes(routes!(get_projection))
        .routes(routes!(rebuild_projection))
}

/// Lists every projection with its status, positions, lag and row count.
#[utoipa::path(
    get,
    path = "/api/admin/projections",
    tag = "admin",
    responses(
        (status = 200, description = "Every projection", body = ProjectionList),
        (status = 503, description = "NATS does not answer", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn list_projections(
    State(state): State<AdminState>,
) -> Result<Json<ProjectionList>, ApiError> {
    let mut items = Vec::with_capacity(PROJECTIONS.len());
    for projection in PROJECTIONS {
        items.push(describe(&state, projection).await?);
    }
    Ok(Json(ProjectionList { items }))
}

/// One projection with its status, positions, lag and row count.
#[utoipa::path(
    get,
    path = "/api/admin/projections/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "The projection's name, such as `orders`")),
    responses(
        (status = 200, description = "The projection", body = ProjectionInfo),
        (status = 404, description = "No projection has this name", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 503, description = "NATS does not answer", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn get_projection(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<ProjectionInfo>, ApiError> {
    let projection = find(&name)?;
    Ok(Json(describe(&state, projection).await?))
}

/// Starts a rebuild: a new version of the read model is built from the start of
/// its streams while the live one keeps serving, and replaces it atomically once
/// it has caught up. Follow it with `GET /api/admin/projections/{name}`.
#[utoipa::path(
    post,
    path = "/api/admin/projections/{name}/rebuild",
    tag = "admin",
    params(("name" = String, Path, description = "The projection's name, such as `orders`")),
    responses(
        (status = 202, description = "The rebuild started", body = RebuildStarted),
        (status = 404, description = "No projection has this name", body = platform::http::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rebuild of this projection is running", body = platform::http::Problem, content_type = "application/problem+json"),
    )
)]
async fn rebuild_projection(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<RebuildStarted>), ApiError> {
    let projection = find(&name)?;
    let started = rebuild::begin(
        &state.pool,
        &state.jetstream,
        &state.common,
        &state.requests,
        projection,
    )
    .await
    .map_err(|error| match error {
        BeginError::AlreadyRunning { .. } => ApiError::conflict(error.to_string()),
        BeginError::Failed(error) => ApiError::from(error),
    })?;
    let body = RebuildStarted {
        name: projection.name.to_owned(),
        version: started.target_version - 1,
        target_version: started.target_version,
        started_at: started.started_at,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

fn find(name: &str) -> Result<&'static Projection, ApiError> {
    PROJECTIONS
        .iter()
        .find(|projection| projection.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no projection is named {name}")))
}

async fn describe(state: &AdminState, projection: &Projection) -> Result<ProjectionInfo, ApiError> {
    let mut sources = Vec::with_capacity(projection.sources.len());
    for source in projection.sources {
        sources.push(progress(state, source, source.durable_name).await?);
    }
    let table = projection.tables[0];
    // The table name comes from the const list of projections, never from input.
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&state.pool)
        .await
        .with_context(|| format!("count the rows of {table}"))?;
    let durables: Vec<&str> = projection.sources.iter().map(|s| s.durable_name).collect();
    let updated_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(updated_at) FROM consumer_checkpoints WHERE consumer = ANY($1)",
    )
    .bind(&durables)
    .fetch_one(&state.pool)
    .await
    .context("read the checkpoints' times")?;
    let versions = rebuild::versions(&state.pool, projection.name).await?;
    let mut status = state.statuses.get(projection.name);
    let rebuild = match versions.rebuild {
        Some(rebuild) => {
            if status == Status::Live {
                status = Status::Rebuilding;
            }
            let mut sources = Vec::with_capacity(projection.sources.len());
            for source in projection.sources {
                let durable = source.rebuild_durable_name();
                sources.push(progress(state, source, &durable).await?);
            }
            Some(RebuildProgress {
                target_version: rebuild.target_version,
                sources,
                started_at: rebuild.started_at,
            })
        }
        None => None,
    };
    Ok(ProjectionInfo {
        name: projection.name.to_owned(),
        version: versions.version,
        status,
        sources,
        rows,
        updated_at,
        rebuild,
    })
}

/// How far the consumer `durable_name` of a source has read its stream.
async fn progress(
    state: &AdminState,
    source: &SourceSpec,
    durable_name: &str,
) -> Result<SourceProgress, ApiError> {
    let stream = state.common.stream(source.service).name;
    let position = checkpoint(&state.pool, durable_name, &stream).await?;
    let (last_seq, pending) = stream_progress(&state.jetstream, &stream, durable_name).await?;
    let lag = pending.unwrap_or(last_seq.saturating_sub(position));
    Ok(SourceProgress {
        stream,
        position,
        last_seq,
        lag,
    })
}

/// The stream sequence a durable consumer has committed for a stream.
async fn checkpoint(pool: &PgPool, durable_name: &str, stream: &str) -> anyhow::Result<u64> {
    let position: Option<i64> = sqlx::query_scalar(
        "SELECT stream_seq FROM consumer_checkpoints WHERE consumer = $1 AND stream = $2",
    )
    .bind(durable_name)
    .bind(stream)
    .fetch_optional(pool)
    .await
    .with_context(|| format!("read the checkpoint of {durable_name}"))?;
    Ok(position.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
}

/// The stream's last sequence (0 while it does not exist) and, when the consumer
/// exists, how many of its messages are not yet acked.
async fn stream_progress(
    jetstream: &jetstream::Context,
    stream: &str,
    durable_name: &str,
) -> Result<(u64, Option<u64>), ApiError> {
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::warn!(%stream, %error, "JetStream does not answer");
        ApiError::unavailable(format!("JetStream does not answer for stream {stream}"))
    };
    let handle = match jetstream.get_stream(stream).await {
        Ok(handle) => handle,
        Err(error) => {
            return match error.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok((0, None))
                }
                _ => Err(unavailable(&error)),
            }
        }
    };
    let last_seq = handle.cached_info().state.last_sequence;
    let pending = match handle.consumer_info(durable_name).await {
        Ok(info) => Some(info.num_pending + info.num_ack_pending as u64),
        Err(error) => {
            use async_nats::jetstream::context::ConsumerInfoErrorKind as Kind;
            match error.kind() {
                Kind::NotFound | Kind::StreamNotFound => None,
                Kind::JetStream(e) if e.error_code() == ErrorCode::CONSUMER_NOT_FOUND => None,
                _ => return Err(unavailable(&error)),
            }
        }
    };
    Ok((last_seq, pending))
}

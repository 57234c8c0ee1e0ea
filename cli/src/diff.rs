//! `shop projections diff <name>`: replays a projection's streams from NATS
//! through the current projection code into a scratch database, and diffs the
//! result row by row against the live read model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use platform::config::CommonArgs;
use platform::db::{self, READ_MODEL_DB};
use projections::app::Projection;
use projections::{diff, record, replay};
use sqlx::PgPool;

/// Options of `shop projections diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The projection to check, such as `orders` (see `shop projections`).
    pub name: String,

    /// The live read-model database; by default `read_models` on the
    /// `DATABASE_URL` server.
    #[arg(long, env = "PROJECTIONS_DATABASE_URL")]
    pub projections_database_url: Option<String>,

    /// Replay every stream to its end, rather than only up to the position each
    /// live consumer has applied. On a stack that is still moving, the live model
    /// then lags behind the replay.
    #[arg(long)]
    pub whole_streams: bool,

    /// Also write the replayed events to FILE as JSONL, one Envelope a line: a
    /// fixture for an event-replay test.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the diff and prints it; the exit code is 0 when the replay equals the
/// live read model and 1 when it does not.
pub async fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let projection = replay::projection(&args.name)?;
    let server = args.common.server()?;
    let url = args.projections_database_url.as_deref();
    let live = db::connect(args.common.database(url, READ_MODEL_DB.name)?, 2).await?;
    let up_to = replay_bounds(&live, projection, args.whole_streams).await?;

    let nats = platform::nats::connect(&args.common.nats_url).await?;
    let jetstream = async_nats::jetstream::new(nats);
    let services: Vec<&str> = services(projection).into_iter().collect();
    let namespace = &args.common.stream_namespace;
    let envelopes = record::read_streams(&jetstream, namespace, &services, &up_to)
        .await
        .context("read the streams from NATS")?;
    if let Some(path) = &args.record {
        replay::write_fixture(path, &envelopes)?;
        eprintln!("wrote {} events to {}", envelopes.len(), path.display());
    }

    let fed = envelopes
        .iter()
        .filter(|e| replay::source_of(projection, e).is_some())
        .count();
    eprintln!(
        "replayed {fed} events of {} into a scratch database, compared with the live {}",
        services.join(", "),
        projection.tables.join(", ")
    );
    let diff = diff::replay_diff(&live, &server, projection, &envelopes).await?;
    if diff.is_empty() {
        println!(
            "no difference: {} is what its events make today",
            projection.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{diff}");
    println!("{} rows differ", diff.rows.len());
    Ok(ExitCode::from(1))
}

/// The command services whose streams feed the projection.
fn services(projection: &Projection) -> BTreeSet<&'static str> {
    projection.sources.iter().map(|s| s.service).collect()
}

/// How far to read each service's stream: up to what the live consumer of that
/// stream has applied (nothing, when it has applied nothing), or, with
/// `whole_streams`, to the end.
async fn replay_bounds(
    live: &PgPool,
    projection: &Projection,
    whole_streams: bool,
) -> anyhow::Result<BTreeMap<String, u64>> {
    if whole_streams {
        return Ok(BTreeMap::new());
    }
    let checkpoints = diff::live_checkpoints(live, projection).await?;
    Ok(projection
        .sources
        .iter()
        .map(|source| {
            let applied = checkpoints.get(source.durable_name).copied();
            (source.service.to_owned(), applied.unwrap_or(0))
        })
        .collect())
}

//! `shop bench`: measures a running stack next to its physical limits (issue 5).
//! Command throughput against a Postgres ceiling measured in the same run,
//! freshness, saga latency, rebuild and query throughput, and each service's
//! memory; the report goes to `docs/benchmarks.md` and `target/bench/`.

mod ceiling;
mod commands;
mod footprint;
mod freshness;
mod http;
mod idle;
mod load;
mod machine;
mod markdown;
mod queries;
mod rebuild;
mod report;
mod run;
mod saga;
mod setup;
mod smoke;
mod stack;

use std::path::PathBuf;
use std::time::Duration;

pub use run::run;

/// What `shop bench --only` can pick. The Postgres ceiling and the memory
/// footprint are measured with the command load.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Restock throughput direct and through the gateway, the Postgres ceiling and
    /// each service's memory under that load.
    Commands,
    /// Time from a command's 2xx until the query service shows it.
    Freshness,
    /// Time from placing an order until it is CONFIRMED.
    Saga,
    /// Events per second while the products and orders projections are rebuilt.
    Rebuild,
    /// Product and order reads, direct and through the gateway.
    Queries,
}

/// Options of `shop bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub urls: http::Urls,

    /// The PostgreSQL server, as a user that may create databases: the Postgres
    /// ceiling runs on a scratch database there (`shop_bench_ceiling`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,

    /// NATS with JetStream: the benchmark waits there until every consumer has
    /// worked off the load before a latency measurement.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Seconds each measurement runs (each client count, each path).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub duration: f64,

    /// Run only these scenarios (comma-separated). The report then covers only
    /// them and docs/benchmarks.md is left alone.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Scenario>,

    /// A few seconds in all: tiny durations and no rebuild, checking only that
    /// every scenario completes and produces numbers. For CI.
    #[arg(long)]
    pub smoke: bool,

    /// Directory for report.json and report.md.
    #[arg(long, default_value = "target/bench", value_name = "DIR")]
    pub out: PathBuf,

    /// Where a full run also writes its Markdown report.
    #[arg(long, default_value = "docs/benchmarks.md", value_name = "FILE")]
    pub docs: PathBuf,

    /// Start the stack with `shop up --no-build` and time it until ready (the
    /// start-up figure), run the benchmark against it, then stop it.
    #[arg(long)]
    pub start_stack: bool,

    /// Concurrent clients of the command load (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub clients: Vec<usize>,

    /// Events the products and orders streams must hold before the rebuilds;
    /// restocks top them up to it.
    #[arg(long, default_value_t = 100_000, value_name = "EVENTS")]
    pub rebuild_events: u64,
}

impl BenchArgs {
    /// Whether `scenario` is part of this run.
    fn wants(&self, scenario: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }

    /// How long each measurement runs.
    fn measurement(&self) -> Duration {
        if self.smoke {
            Duration::from_millis(400)
        } else {
            Duration::from_secs_f64(self.duration.max(0.5))
        }
    }
}

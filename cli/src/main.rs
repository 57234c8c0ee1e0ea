//! `shop`: runs the whole Shop system on one machine and talks to a running one.

mod bench;
mod binaries;
mod dead_letters;
mod demo;
mod diff;
mod events;
mod http;
mod infra;
mod logs;
mod processes;
mod progress;
mod projections;
mod provision;
mod readiness;
mod relay;
mod services;
mod signals;
mod status;
mod summary;
mod tail;
mod trace;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Shop command line: run the CQRS/event-sourced shop locally and inspect it.
#[derive(Parser, Debug)]
#[command(
    name = "shop",
    version,
    about = "Run the Shop system locally and inspect a running stack.",
    long_about = "Run the Shop system locally and inspect a running stack.\n\n\
        `shop up` runs every service (the command services, projection-worker, query services, gateway) \
        as its own process with prefixed logs, on the PostgreSQL at DATABASE_URL and the NATS at NATS_URL, \
        or on private ones it starts when those do not answer.\n\n\
        Every option can also be set through the environment variable shown next to it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole system locally until Ctrl-C.
    ///
    /// Uses PostgreSQL at DATABASE_URL and NATS at NATS_URL when they answer, and
    /// otherwise starts private ones (data under .shop/). Creates every database and
    /// role, rebuilds the service binaries when shop runs from the cargo workspace,
    /// starts each service with its own database role and logs prefixed by its name,
    /// and waits until every /readyz answers. Ctrl-C or SIGTERM stops everything; if
    /// a service dies, the rest are stopped and shop exits non-zero.
    Up(up::UpArgs),

    /// Create every database and role the services need, then exit.
    ///
    /// Safe to run again: what exists is left as it is. The one-shot `provision`
    /// service of docker-compose.yml runs this.
    Provision(provision::ProvisionArgs),

    /// Check whether a running stack is ready (GET $SHOP_URL/readyz).
    Status(status::StatusArgs),

    /// Print an aggregate's event stream (GET $SHOP_URL/api/<kind>/<id>/events).
    ///
    /// One line per event, in sequence order: its sequence, when it was recorded, its
    /// type, a short summary of its payload and the correlation id of the request
    /// that caused it. `--json` prints the stream as the gateway answers it, and
    /// `--from-sequence N` starts at event N. A payment's id is its order's id.
    ///
    /// `shop events tail` follows every event live from NATS, and
    /// `shop events trace <correlation_id>` tells the story of one request across
    /// all services (`--mermaid` draws it).
    Events(events::EventsArgs),

    /// Print an aggregate's state as pretty JSON (GET $SHOP_URL/api/<kind>/<id>/state).
    ///
    /// The state is rebuilt from the aggregate's events. `--version N` shows it as it
    /// was right after event N (time travel); a version the aggregate never reached
    /// is an error, as is an unknown id. A payment's id is its order's id.
    State(events::StateArgs),

    /// Show every projection of a running stack: version, status, position, lag, rows.
    Projections(projections::ProjectionsArgs),

    /// Republish a command service's whole event log into its stream.
    ///
    /// `shop relay republish <service>` refills a lost, purged or partial stream with
    /// a progress bar; running it twice leaves exactly one message per event.
    Relay(relay::RelayArgs),

    /// Show the events that consumers parked after their last attempt, with the error.
    ///
    /// One line per dead letter of every service (GET $SHOP_URL/api/admin/dead-letters):
    /// its service, id, consumer, event, aggregate, attempts, when it was parked and
    /// the start of its error. `shop dead-letters retry <service> <id>` applies one
    /// again once its cause is fixed.
    DeadLetters(dead_letters::DeadLettersArgs),

    /// Benchmark a running stack against its physical limits and write the report.
    ///
    /// Measures restock throughput (direct and through the gateway) next to a
    /// Postgres ceiling measured in the same run, freshness, saga latency, rebuild
    /// and query throughput, and each service's memory; writes report.json and
    /// report.md to target/bench, and after a full run docs/benchmarks.md.
    /// `--start-stack` also starts the stack and times its start-up.
    Bench(Box<bench::BenchArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Provision(args) => provision::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Events(args) => events::run_events(args).await.map(|()| ExitCode::SUCCESS),
        Command::State(args) => events::run_state(args).await.map(|()| ExitCode::SUCCESS),
        Command::Projections(args) => projections::run(args).await,
        Command::DeadLetters(args) => dead_letters::run(args).await,
        Command::Relay(args) => relay::run(args).await,
        Command::Bench(args) => bench::run(*args).await,
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error}");
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        ExitCode::FAILURE
    })
}

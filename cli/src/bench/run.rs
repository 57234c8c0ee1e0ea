//! The order of a benchmark run: set up, measure each scenario, judge the
//! targets, write the report.

use std::future::Future;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::Client;
use sqlx::postgres::PgConnectOptions;

use super::ceiling::Ceiling;
use super::footprint::Sampler;
use super::http::{self, Urls};
use super::load::{Recorder, Summary, Window};
use super::machine::{machine, process_cpu, CpuTimes};
use super::report::{CommandRow, Measured, QueryRow, RateSummary, Report};
use super::setup::{self, Products};
use super::smoke::missing_numbers;
use super::stack::{self, StartedStack};
use super::{commands, freshness, idle, markdown, queries, rebuild, saga, BenchArgs, Scenario};

/// The steady command rate of the freshness measurement.
const FRESHNESS_RATE: f64 = 200.0;

/// The steady order rate of the saga measurement.
const SAGA_RATE: f64 = 50.0;

/// Clients of the query load.
const QUERY_CLIENTS: usize = 32;

/// How long the projections may take to catch up after a round of top-up.
const TOP_UP_DRAIN: Duration = Duration::from_secs(600);

/// Customers the saga's orders are spread over.
const CUSTOMERS: usize = 20;

/// Runs the benchmark and writes its report. Fails when a scenario could not run,
/// and in a smoke run when a scenario produced no numbers.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let client = http::client()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let started = if args.start_stack {
        say("starting the stack with `shop up --no-build`");
        let stack = StartedStack::start(&client, &args.urls, &args.out.join("stack.log")).await?;
        say(format!(
            "the stack was ready after {:.2} s",
            stack.startup.as_secs_f64()
        ));
        Some(stack)
    } else if stack::is_ready(&client, &args.urls).await {
        None
    } else {
        anyhow::bail!(
            "no ready stack at {} (and its services); start one with `shop up`, or pass --start-stack",
            args.urls.gateway
        );
    };
    let mut report = Report {
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: machine(),
        duration_seconds: args.measurement().as_secs_f64(),
        smoke: args.smoke,
        startup_seconds: started.as_ref().map(|stack| stack.startup.as_secs_f64()),
        ..Report::default()
    };
    if let Err(error) = scenarios(&args, &client, &mut report).await {
        report.problems.push(format!("{error:#}"));
    }
    if let Some(stack) = started {
        stack.stop().await?;
    }
    report.judge();
    if args.smoke {
        report.problems.extend(missing_numbers(&args, &report));
    }
    write(&args, &report)?;
    for target in &report.targets {
        let verdict = match target.pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "n/a",
        };
        say(format!(
            "{verdict:>4}  {}: {} (goal {})",
            target.name, target.measured, target.goal
        ));
    }
    for problem in &report.problems {
        say(format!("problem: {problem}"));
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints a progress line.
fn say(line: impl AsRef<str>) {
    eprintln!("bench: {}", line.as_ref());
}

async fn scenarios(args: &BenchArgs, client: &Client, report: &mut Report) -> anyhow::Result<()> {
    let urls = &args.urls;
    say("creating the 1,000 benchmark products (kept across runs)");
    let products = setup::products(client, urls).await?;
    let window = Window::of(args.measurement());
    // Created early, so that payments has heard of them before the saga runs.
    let customers = if [Scenario::Saga, Scenario::Queries, Scenario::Rebuild]
        .iter()
        .any(|scenario| args.wants(*scenario))
    {
        setup::customers(client, urls, CUSTOMERS).await?
    } else {
        Vec::new()
    };
    // A scenario that fails is reported, and the others still run.
    if args.wants(Scenario::Commands) {
        if let Err(error) = command_load(args, client, &products, window, report).await {
            report.problems.push(format!("commands: {error:#}"));
        }
    }
    if args.wants(Scenario::Freshness) {
        settle(args, client, report).await;
        say(format!("freshness at {FRESHNESS_RATE} commands/s"));
        let before = CpuTimes::now();
        let summary =
            freshness::measure(client, urls, &products, FRESHNESS_RATE, window.measured).await;
        report.freshness = Some(RateSummary {
            rate: FRESHNESS_RATE,
            summary,
            machine_busy: busy_since(before),
        });
    }
    let mut orders = Vec::new();
    let warmed = if args.wants(Scenario::Saga) || args.wants(Scenario::Queries) {
        let warm_up = saga::warm_up(client, urls, &products, &customers).await;
        let confirmed = warm_up.confirmed;
        if let Some(error) = &warm_up.error {
            say(format!(
                "saga warm-up: {confirmed} of {CUSTOMERS} orders confirmed; first error: {error}"
            ));
        }
        if confirmed == 0 {
            report.problems.push(format!(
                "saga warm-up: no order was confirmed: {:?}",
                warm_up.error
            ));
        }
        (confirmed > 0).then_some(warm_up.steps_to_confirm)
    } else {
        None
    };
    if let Some(steps_to_confirm) = warmed {
        // Without the saga scenario, a short one still places orders to query.
        let (duration, keep) = if args.wants(Scenario::Saga) {
            (window.measured, true)
        } else {
            (Duration::from_millis(400), false)
        };
        settle(args, client, report).await;
        say(format!("saga at {SAGA_RATE} orders/s"));
        let before = CpuTimes::now();
        let (summary, ids) = saga::measure(
            client,
            urls,
            &products,
            &customers,
            steps_to_confirm,
            SAGA_RATE,
            duration,
        )
        .await;
        if keep {
            report.saga = Some(RateSummary {
                rate: SAGA_RATE,
                summary,
                machine_busy: busy_since(before),
            });
        }
        orders = ids;
    }
    if args.wants(Scenario::Rebuild) {
        let rebuilt = if args.smoke && !args.only.contains(&Scenario::Rebuild) {
            Err("skipped in a smoke run".to_owned())
        } else {
            rebuild_projections(args, client, &products, &customers, report).await
        };
        report.rebuild = Some(rebuilt);
    }
    if args.wants(Scenario::Queries) {
        report.queries = query_load(client, urls, &products, orders, window).await;
    }
    Ok(())
}

/// Waits (up to two minutes) until the projections have drained the backlog of
/// the load before, and then (up to one more) until every consumer of the
/// stack's streams, the saga's reactions included, has: a latency should not
/// time a backlog. Reactions that stay busy are only reported on the terminal,
/// since a leftover durable that nothing consumes would never drain.
async fn settle(args: &BenchArgs, client: &Client, report: &mut Report) {
    say("waiting until the projections and the reactions have caught up");
    let projections = &args.urls.projections_url;
    let timeout = Duration::from_secs(120);
    if let Err(error) = rebuild::wait_until_caught_up(client, projections, timeout).await {
        report
            .problems
            .push(format!("before a latency measurement: {error}"));
        return;
    }
    let timeout = Duration::from_secs(60);
    if let Err(error) = idle::wait_until_consumers_idle(&args.nats_url, timeout).await {
        say(format!("measuring anyway: {error}"));
    }
}

/// The share of the machine's cores busy since `before` was read.
fn busy_since(before: Option<CpuTimes>) -> Option<f64> {
    before?.busy_until(CpuTimes::now()?)
}

/// The Postgres ceiling at each connection count, then restocks at as many
/// clients, direct and through the gateway; memory is sampled under that load.
async fn command_load(
    args: &BenchArgs,
    client: &Client,
    products: &Arc<Products>,
    window: Window,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = PgConnectOptions::from_str(&args.database_url).context("parse DATABASE_URL")?;
    let ceiling = Ceiling::create(&server)
        .await
        .context("create the ceiling's scratch database")?;
    // Every ceiling runs before any command load: the stack's pools grow with the
    // load and keep their connections, and the ceiling needs up to 32 more.
    let events = products.mean_events();
    ceiling.seed(events).await?;
    let mut limits = Vec::new();
    for &clients in &args.clients {
        say(format!(
            "Postgres ceiling, {clients} connections ({events} events per aggregate)"
        ));
        let limit = ceiling.measure(clients, window).await;
        limits.push(
            limit
                .map_err(|error| {
                    report
                        .problems
                        .push(format!("ceiling at {clients} connections: {error:#}"))
                })
                .ok(),
        );
    }
    let sampler = Sampler::start();
    for (&clients, limit) in args.clients.iter().zip(limits) {
        say(format!(
            "commands, {clients} clients: inventory and gateway, in turns"
        ));
        let (direct, gateway) = side_by_side(
            window,
            |round| commands::restock(client, &args.urls.inventory_url, products, clients, round),
            |round| commands::restock(client, &args.urls.gateway, products, clients, round),
        )
        .await;
        report.commands.push(CommandRow {
            clients,
            direct: Some(direct),
            gateway: Some(gateway),
            ceiling: limit,
            ceiling_events_per_aggregate: events,
        });
    }
    report.memory = sampler.finish().await;
    ceiling.drop().await
}

/// Tops the products and the orders streams up to `--rebuild-events` each, waits
/// until everything downstream has caught up, then rebuilds the two projections
/// one after the other.
async fn rebuild_projections(
    args: &BenchArgs,
    client: &Client,
    products: &Arc<Products>,
    customers: &[String],
    report: &mut Report,
) -> Result<Vec<rebuild::Rebuilt>, String> {
    let projections_url = &args.urls.projections_url;
    rebuild::available(client, projections_url).await?;
    top_up(args, client, "products", "restocking", || async {
        let window = Window::of(Duration::from_secs(10));
        commands::restock(client, &args.urls.inventory_url, products, 32, window)
            .await
            .summary(window.measured)
    })
    .await?;
    let customers = Arc::new(customers.to_vec());
    top_up(args, client, "orders", "placing orders", || {
        commands::place_orders(
            client,
            &args.urls.orders_url,
            products,
            &customers,
            4,
            Window::of(Duration::from_secs(2)),
        )
    })
    .await?;
    settle(args, client, report).await;
    let mut rebuilt = Vec::new();
    for name in ["products", "orders"] {
        say(format!("rebuilding {name}"));
        rebuilt.push(rebuild::rebuild(client, projections_url, name).await?);
    }
    Ok(rebuilt)
}

/// Runs `load` until the streams of projection `name` hold `--rebuild-events`,
/// letting the projections catch up after each round: the saga turns an order
/// into its events only later, and a backlog would run on into the rebuilds.
async fn top_up<F, Fut>(
    args: &BenchArgs,
    client: &Client,
    name: &str,
    doing: &str,
    load: F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Summary>,
{
    loop {
        let events = rebuild::projection(client, &args.urls.projections_url, name)
            .await?
            .events();
        if events >= args.rebuild_events {
            return Ok(());
        }
        say(format!(
            "rebuild: the {name} streams hold {events} events; {doing} up to {}",
            args.rebuild_events
        ));
        let topped = load().await;
        if topped.operations == 0 {
            return Err(format!(
                "could not top the {name} streams up: {:?}",
                topped.first_error
            ));
        }
        rebuild::wait_until_caught_up(client, &args.urls.projections_url, TOP_UP_DRAIN).await?;
    }
}

/// Product and order reads by key, direct and through the gateway.
async fn query_load(
    client: &Client,
    urls: &Urls,
    products: &Arc<Products>,
    orders: Vec<String>,
    window: Window,
) -> Vec<QueryRow> {
    let reads = [
        (
            "GET /api/products/{sku}",
            &urls.catalog_url,
            "products",
            Arc::new(products.skus.clone()),
        ),
        (
            "GET /api/orders/{id}",
            &urls.orders_view_url,
            "orders",
            Arc::new(orders),
        ),
    ];
    let mut rows = Vec::new();
    for (what, direct_url, resource, keys) in reads {
        if keys.is_empty() {
            continue;
        }
        say(format!(
            "queries: {what}, {QUERY_CLIENTS} clients, direct and through the gateway, in turns"
        ));
        let direct = format!("{direct_url}/api/{resource}");
        let gateway = format!("{}/api/{resource}", urls.gateway);
        let (direct, gateway) = side_by_side(
            window,
            |round| queries::by_key(client, direct.clone(), keys.clone(), QUERY_CLIENTS, round),
            |round| queries::by_key(client, gateway.clone(), keys.clone(), QUERY_CLIENTS, round),
        )
        .await;
        rows.push(QueryRow {
            what: what.to_owned(),
            clients: QUERY_CLIENTS,
            direct: Some(direct),
            gateway: Some(gateway),
        });
    }
    rows
}

/// How many rounds each side of a [`side_by_side`] measurement takes.
const ROUNDS: u32 = 4;

/// Measures two closed loops in alternating rounds, A B B A A B B A, each side
/// `window.measured` in all, and charges each the CPU this process spent on it.
/// Drift in the machine or a neighbour's burst then weighs on both sides alike,
/// rather than on whichever ran second: one run of each, back to back, differed
/// by up to a third on this machine from one run to the next.
async fn side_by_side<A, B, FutA, FutB>(window: Window, mut a: A, mut b: B) -> (Measured, Measured)
where
    A: FnMut(Window) -> FutA,
    B: FnMut(Window) -> FutB,
    FutA: Future<Output = Recorder>,
    FutB: Future<Output = Recorder>,
{
    let round = Window {
        warmup: window.warmup / ROUNDS,
        measured: window.measured / ROUNDS,
    };
    let (mut first, mut second) = (Side::default(), Side::default());
    for index in 0..2 * ROUNDS {
        let a_turn = (index / 2 % 2 == 0) == (index % 2 == 0);
        let before = process_cpu();
        if a_turn {
            first.add(a(round).await, process_cpu().saturating_sub(before));
        } else {
            second.add(b(round).await, process_cpu().saturating_sub(before));
        }
    }
    (first.measured(window), second.measured(window))
}

/// One side of a [`side_by_side`] measurement, round after round.
#[derive(Default)]
struct Side {
    recorded: Recorder,
    cpu: Duration,
}

impl Side {
    fn add(&mut self, round: Recorder, cpu: Duration) {
        self.recorded.merge(round);
        self.cpu += cpu;
    }

    fn measured(&self, window: Window) -> Measured {
        let summary = self.recorded.summary(window.measured);
        // The warm-ups' requests cost CPU too but are not counted: scale them in.
        let total = (window.warmup + window.measured).as_secs_f64();
        let requests = summary.operations as f64 * total / window.measured.as_secs_f64();
        Measured {
            client_cpu_us_per_request: if requests > 0.0 {
                self.cpu.as_secs_f64() * 1e6 / requests
            } else {
                0.0
            },
            summary,
        }
    }
}

/// Writes report.json and report.md to `--out`, and the Markdown to `--docs` after
/// a full run.
fn write(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report).context("serialize the report")?;
    let markdown = markdown::render(report);
    let mut written = vec![args.out.join("report.json"), args.out.join("report.md")];
    std::fs::write(&written[0], json).with_context(|| format!("write {}", written[0].display()))?;
    std::fs::write(&written[1], &markdown)
        .with_context(|| format!("write {}", written[1].display()))?;
    if !args.smoke && args.only.is_empty() {
        std::fs::write(&args.docs, &markdown)
            .with_context(|| format!("write {}", args.docs.display()))?;
        written.push(args.docs.clone());
    }
    for path in written {
        say(format!("wrote {}", path.display()));
    }
    Ok(())
}

//! The benchmark's findings as data, written as JSON, with the targets of issue 5
//! judged against them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::footprint::Memory;
use super::load::Summary;
use super::rebuild::Rebuilt;

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// The machine and build it ran on.
    pub machine: Machine,
    /// Seconds each measurement ran, and whether this was a smoke run.
    pub duration_seconds: f64,
    /// A smoke run: tiny durations, for CI; its figures mean nothing.
    pub smoke: bool,
    /// Command throughput, one row per client count.
    pub commands: Vec<CommandRow>,
    /// Freshness at a steady command rate.
    pub freshness: Option<RateSummary>,
    /// Saga latency at a steady order rate.
    pub saga: Option<RateSummary>,
    /// Rebuild throughput per projection, or why it could not be measured.
    pub rebuild: Option<Result<Vec<Rebuilt>, String>>,
    /// Query throughput, one row per kind of read.
    pub queries: Vec<QueryRow>,
    /// Memory per service under the command load.
    pub memory: BTreeMap<String, Memory>,
    /// From `shop up --no-build` until every `/readyz` answered, when this run
    /// started the stack.
    pub startup_seconds: Option<f64>,
    /// The targets, judged.
    pub targets: Vec<Target>,
    /// What went wrong in scenarios that could not run.
    pub problems: Vec<String>,
}

/// The machine and the builds under test.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// The profile `shop bench` was built with: `debug` or `release`.
    pub bench_profile: String,
    /// The profile of the service binaries, from the path of their executables.
    pub services_profile: String,
}

/// A closed-loop measurement and the CPU the benchmark itself spent on it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measured {
    /// Throughput and latencies.
    #[serde(flatten)]
    pub summary: Summary,
    /// CPU time of the benchmark process per successful request, in microseconds.
    pub client_cpu_us_per_request: f64,
}

/// An open-loop measurement at a set rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RateSummary {
    /// The rate asked for, per second.
    pub rate: f64,
    /// Throughput (achieved rate) and latencies.
    #[serde(flatten)]
    pub summary: Summary,
    /// The share of the machine's cores busy meanwhile (client, services,
    /// PostgreSQL and NATS), from 0 to 1: near 1, latency is mostly queueing
    /// for a core. `None` where `/proc/stat` cannot be read.
    pub machine_busy: Option<f64>,
}

/// Command throughput at one client count, and the ceiling at as many connections.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommandRow {
    /// Concurrent clients, and connections for the ceiling.
    pub clients: usize,
    /// Restocks straight to the inventory service.
    pub direct: Option<Measured>,
    /// Restocks through the gateway.
    pub gateway: Option<Measured>,
    /// The Postgres ceiling.
    pub ceiling: Option<Summary>,
    /// Events each scratch aggregate held when the ceiling was measured.
    pub ceiling_events_per_aggregate: i64,
}

impl CommandRow {
    /// Direct throughput as a share of the ceiling.
    pub fn direct_ratio(&self) -> Option<f64> {
        ratio(
            self.direct.as_ref()?.summary.throughput,
            self.ceiling.as_ref()?.throughput,
        )
    }

    /// Gateway throughput as a share of the ceiling.
    pub fn gateway_ratio(&self) -> Option<f64> {
        ratio(
            self.gateway.as_ref()?.summary.throughput,
            self.ceiling.as_ref()?.throughput,
        )
    }

    /// What the gateway costs: the share of direct throughput lost through it.
    pub fn gateway_cost(&self) -> Option<f64> {
        gateway_cost(self.direct.as_ref()?, self.gateway.as_ref()?)
    }
}

/// Query throughput of one kind of read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueryRow {
    /// What is read, such as `GET /api/products/{sku}`.
    pub what: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Straight to the query service.
    pub direct: Option<Measured>,
    /// Through the gateway.
    pub gateway: Option<Measured>,
}

impl QueryRow {
    /// What the gateway costs: the share of direct throughput lost through it.
    pub fn gateway_cost(&self) -> Option<f64> {
        gateway_cost(self.direct.as_ref()?, self.gateway.as_ref()?)
    }
}

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

fn gateway_cost(direct: &Measured, gateway: &Measured) -> Option<f64> {
    ratio(gateway.summary.throughput, direct.summary.throughput).map(|share| 1.0 - share)
}

/// One target of issue 5, judged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    /// What is measured, such as `freshness p99`.
    pub name: String,
    /// The goal, as text: `≤ 25 ms`.
    pub goal: String,
    /// The figure, as text: `31.2 ms`.
    pub measured: String,
    /// Met or not; None when it could not be measured.
    pub pass: Option<bool>,
    /// How far the figure is from its goal: above 1 meets it, and the lowest is
    /// the worst ratio of the run.
    pub score: Option<f64>,
}

impl Target {
    fn judged(name: &str, goal: &str, measured: String, score: f64) -> Self {
        Self {
            name: name.to_owned(),
            goal: goal.to_owned(),
            measured,
            pass: Some(score >= 1.0),
            score: Some(score),
        }
    }

    fn unmeasured(name: &str, goal: &str, why: &str) -> Self {
        Self {
            name: name.to_owned(),
            goal: goal.to_owned(),
            measured: why.to_owned(),
            pass: None,
            score: None,
        }
    }
}

/// Fewer events than this make a rebuild's rate mostly its fixed start-up cost.
pub const MIN_REBUILD_EVENTS: u64 = 10_000;

/// The client count whose row the targets are judged at.
pub const TARGET_CLIENTS: usize = 32;

impl Report {
    /// Judges every target of issue 5 against this report's figures.
    pub fn judge(&mut self) {
        let mut targets = Vec::new();
        let row = self
            .commands
            .iter()
            .find(|row| row.clients == TARGET_CLIENTS);
        for (name, value) in [
            (
                "commands direct / ceiling, 32 clients",
                row.and_then(CommandRow::direct_ratio),
            ),
            (
                "commands via gateway / ceiling, 32 clients",
                row.and_then(CommandRow::gateway_ratio),
            ),
        ] {
            targets.push(match value {
                Some(value) => Target::judged(name, "≥ 0.80", format!("{value:.2}"), value / 0.8),
                None => Target::unmeasured(name, "≥ 0.80", "not measured"),
            });
        }
        let mut costs = vec![(
            "gateway cost, commands at 32 clients".to_owned(),
            row.and_then(CommandRow::gateway_cost),
        )];
        for query in &self.queries {
            costs.push((
                format!("gateway cost, {}", query.what),
                query.gateway_cost(),
            ));
        }
        for (name, cost) in costs {
            targets.push(match cost {
                Some(cost) => Target::judged(
                    &name,
                    "≤ 15%",
                    format!("{:.1}%", cost * 100.0),
                    (1.0 - cost) / 0.85,
                ),
                None => Target::unmeasured(&name, "≤ 15%", "not measured"),
            });
        }
        for (name, goal_ms, summary) in [
            ("freshness p99", 25.0, &self.freshness),
            ("saga p99", 150.0, &self.saga),
        ] {
            let goal = format!("≤ {goal_ms} ms");
            targets.push(match summary {
                Some(rate) if rate.summary.operations > 0 => Target::judged(
                    name,
                    &goal,
                    format!("{:.1} ms", rate.summary.p99_ms),
                    goal_ms / rate.summary.p99_ms.max(0.001),
                ),
                _ => Target::unmeasured(name, &goal, "not measured"),
            });
        }
        match &self.rebuild {
            Some(Ok(rebuilt)) if !rebuilt.is_empty() => {
                for projection in rebuilt {
                    let name = format!("rebuild of {}", projection.projection);
                    if projection.events < MIN_REBUILD_EVENTS {
                        let why = format!("only {} events: too few to judge", projection.events);
                        targets.push(Target::unmeasured(&name, "≥ 50,000 events/s", &why));
                        continue;
                    }
                    targets.push(Target::judged(
                        &name,
                        "≥ 50,000 events/s",
                        format!("{:.0} events/s", projection.events_per_second),
                        projection.events_per_second / 50_000.0,
                    ));
                }
            }
            Some(Err(why)) => targets.push(Target::unmeasured(
                "rebuild",
                "≥ 50,000 events/s",
                &format!("not available: {why}"),
            )),
            _ => targets.push(Target::unmeasured(
                "rebuild",
                "≥ 50,000 events/s",
                "not measured",
            )),
        }
        let largest = self
            .memory
            .iter()
            .max_by(|a, b| a.1.peak_rss_mb.total_cmp(&b.1.peak_rss_mb));
        targets.push(match largest {
            Some((name, memory)) => Target::judged(
                &format!("largest RSS under load ({name})"),
                "< 50 MB",
                format!("{:.1} MB", memory.peak_rss_mb),
                50.0 / memory.peak_rss_mb.max(0.001),
            ),
            None => Target::unmeasured("largest RSS under load", "< 50 MB", "not measured"),
        });
        self.targets = targets;
    }

    /// The target furthest from its goal.
    pub fn worst(&self) -> Option<&Target> {
        self.targets
            .iter()
            .filter(|target| target.score.is_some())
            .min_by(|a, b| {
                a.score
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.score.unwrap_or(f64::MAX))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(throughput: f64, p99_ms: f64) -> Summary {
        Summary {
            operations: 100,
            errors: 0,
            first_error: None,
            seconds: 1.0,
            throughput,
            median_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms,
        }
    }

    fn measured(throughput: f64) -> Measured {
        Measured {
            summary: summary(throughput, 10.0),
            client_cpu_us_per_request: 100.0,
        }
    }

    fn report() -> Report {
        Report {
            commands: vec![CommandRow {
                clients: TARGET_CLIENTS,
                direct: Some(measured(900.0)),
                gateway: Some(measured(720.0)),
                ceiling: Some(summary(1000.0, 5.0)),
                ceiling_events_per_aggregate: 10,
            }],
            freshness: Some(RateSummary {
                rate: 200.0,
                summary: summary(200.0, 20.0),
                machine_busy: Some(0.5),
            }),
            saga: Some(RateSummary {
                rate: 50.0,
                summary: summary(50.0, 300.0),
                machine_busy: Some(0.97),
            }),
            rebuild: Some(Err("the projection worker has no rebuild yet".into())),
            memory: BTreeMap::from([(
                "inventory".to_owned(),
                Memory {
                    pid: 1,
                    peak_rss_mb: 40.0,
                    hwm_mb: 41.0,
                },
            )]),
            ..Report::default()
        }
    }

    fn target<'a>(report: &'a Report, name: &str) -> &'a Target {
        report
            .targets
            .iter()
            .find(|target| target.name.starts_with(name))
            .unwrap_or_else(|| panic!("no target {name}: {:?}", report.targets))
    }

    #[test]
    fn each_target_is_judged_against_its_goal() {
        let mut report = report();
        report.judge();
        assert_eq!(target(&report, "commands direct").pass, Some(true));
        assert_eq!(target(&report, "commands direct").measured, "0.90");
        assert_eq!(target(&report, "commands via gateway").pass, Some(false));
        assert_eq!(target(&report, "gateway cost, commands").measured, "20.0%");
        assert_eq!(target(&report, "gateway cost, commands").pass, Some(false));
        assert_eq!(target(&report, "freshness p99").pass, Some(true));
        assert_eq!(target(&report, "saga p99").pass, Some(false));
        assert_eq!(target(&report, "largest RSS").pass, Some(true));
    }

    #[test]
    fn a_rebuild_that_is_not_available_is_reported_not_judged() {
        let mut report = report();
        report.judge();
        let rebuild = target(&report, "rebuild");
        assert_eq!(rebuild.pass, None);
        assert!(rebuild.measured.starts_with("not available"), "{rebuild:?}");
    }

    #[test]
    fn the_worst_ratio_is_the_target_furthest_from_its_goal() {
        let mut report = report();
        report.judge();
        // The saga's p99 of 300 ms is half its goal of 150 ms: the lowest score.
        assert_eq!(report.worst().map(|t| t.name.as_str()), Some("saga p99"));
    }

    #[test]
    fn the_markdown_shows_every_target_and_the_ceiling() {
        let mut report = report();
        report.judge();
        let markdown = super::super::markdown::render(&report);
        for target in &report.targets {
            assert!(markdown.contains(&target.name), "{markdown}");
        }
        assert!(
            markdown.contains("Postgres ceiling (10 events/aggregate)"),
            "{markdown}"
        );
        assert!(
            markdown.contains("The worst ratio to its target: **saga p99**"),
            "{markdown}"
        );
    }

    #[test]
    fn the_latencies_show_how_busy_the_machine_was() {
        let mut report = report();
        report.freshness.as_mut().unwrap().machine_busy = None;
        let markdown = super::super::markdown::render(&report);
        let saga = markdown
            .lines()
            .find(|line| line.starts_with("| Saga"))
            .unwrap();
        assert!(saga.ends_with("| 97% |"), "{saga}");
        let freshness = markdown
            .lines()
            .find(|line| line.starts_with("| Freshness"))
            .unwrap();
        assert!(freshness.ends_with("| - |"), "{freshness}");
    }
}

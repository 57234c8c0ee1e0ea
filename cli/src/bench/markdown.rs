//! The report as Markdown, for `docs/benchmarks.md` and `target/bench/report.md`.

use std::fmt::Write;

use super::load::Summary;
use super::report::{Measured, Report};

/// The command that reproduces the report.
pub const REPRODUCE: &str =
    "cargo build --release --bins && target/release/shop bench --start-stack";

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let machine = &report.machine;
    let _ = writeln!(out, "# Benchmarks\n");
    if report.smoke {
        let _ = writeln!(
            out,
            "**Smoke run: the durations are too short for these figures to mean anything.**\n"
        );
    }
    let _ = writeln!(
        out,
        "Measured {} on {} cores ({}); services built `{}`, `shop bench` built `{}`, \
         {} s per measurement. Client, services, PostgreSQL and NATS share these cores.\n\n\
         Reproduce with `{REPRODUCE}` (see the README's Benchmarks section; \
         `docs/decisions/0016-benchmark-method.md` explains the method).\n",
        report.started_at,
        machine.cores,
        machine.cpu_model,
        machine.services_profile,
        machine.bench_profile,
        report.duration_seconds,
    );
    targets(&mut out, report);
    commands(&mut out, report);
    latencies(&mut out, report);
    rebuild(&mut out, report);
    queries(&mut out, report);
    footprint(&mut out, report);
    errors(&mut out, report);
    if !report.problems.is_empty() {
        let _ = writeln!(out, "## Problems\n");
        for problem in &report.problems {
            let _ = writeln!(out, "- {problem}");
        }
        out.push('\n');
    }
    out
}

fn targets(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "## Targets\n\n| target | goal | measured | |\n|---|---|---|---|"
    );
    for target in &report.targets {
        let verdict = match target.pass {
            Some(true) => "pass",
            Some(false) => "**fail**",
            None => "n/a",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {verdict} |",
            target.name, target.goal, target.measured
        );
    }
    if let Some(worst) = report.worst() {
        let _ = writeln!(
            out,
            "\nThe worst ratio to its target: **{}** ({} against {}, {:.2} of the goal).",
            worst.name,
            worst.measured,
            worst.goal,
            worst.score.unwrap_or_default()
        );
    }
    out.push('\n');
}

fn commands(out: &mut String, report: &Report) {
    if report.commands.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Command throughput and the Postgres ceiling\n\n\
         Restock commands over 1,000 products. The ceiling is the same database work without \
         the service: in one transaction, read the aggregate's events and append one, on a \
         scratch event store whose aggregates hold as many events as the products.\n\n\
         | clients | path | req/s | median ms | p99 ms | errors | of ceiling | client CPU µs/req |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|"
    );
    for row in &report.commands {
        let ceiling = row.ceiling.as_ref().map(|ceiling| ceiling.throughput);
        let share = |measured: &Measured| {
            ceiling.map_or("-".to_owned(), |ceiling| {
                format!("{:.2}", measured.summary.throughput / ceiling)
            })
        };
        for (path, measured) in [("inventory", &row.direct), ("gateway", &row.gateway)] {
            if let Some(measured) = measured {
                let _ = writeln!(
                    out,
                    "| {} | {path} | {} | {} |",
                    row.clients,
                    summary_cells(&measured.summary),
                    format_args!(
                        "{} | {:.0}",
                        share(measured),
                        measured.client_cpu_us_per_request
                    ),
                );
            }
        }
        if let Some(ceiling) = &row.ceiling {
            let _ = writeln!(
                out,
                "| {} | Postgres ceiling ({} events/aggregate) | {} | 1.00 | - |",
                row.clients,
                row.ceiling_events_per_aggregate,
                summary_cells(ceiling)
            );
        }
    }
    out.push('\n');
}

fn latencies(out: &mut String, report: &Report) {
    let rows = [
        (
            "Freshness: restock 2xx until the catalog shows it",
            &report.freshness,
        ),
        (
            "Saga: POST /api/orders until CONFIRMED is visible",
            &report.saga,
        ),
    ];
    if rows.iter().all(|(_, rate)| rate.is_none()) {
        return;
    }
    let _ = writeln!(
        out,
        "## Freshness and saga latency\n\n\
         | what | rate asked /s | achieved /s | median ms | p99 ms | max ms | errors | machine busy |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (what, rate) in rows {
        if let Some(rate) = rate {
            let summary = &rate.summary;
            let _ = writeln!(
                out,
                "| {what} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
                rate.rate,
                summary.throughput,
                summary.median_ms,
                summary.p99_ms,
                summary.max_ms,
                summary.errors,
                rate.machine_busy
                    .map_or("-".to_owned(), |busy| format!("{:.0}%", busy * 100.0))
            );
        }
    }
    out.push('\n');
}

fn rebuild(out: &mut String, report: &Report) {
    let Some(rebuild) = &report.rebuild else {
        return;
    };
    let _ = writeln!(out, "## Rebuild throughput\n");
    match rebuild {
        Ok(rebuilt) => {
            let _ = writeln!(
                out,
                "| projection | events | seconds | events/s |\n|---|---:|---:|---:|"
            );
            for projection in rebuilt {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.0} |",
                    projection.projection,
                    projection.events,
                    projection.seconds,
                    projection.events_per_second
                );
            }
        }
        Err(why) => {
            let _ = writeln!(out, "Not available: {why}.");
        }
    }
    out.push('\n');
}

fn queries(out: &mut String, report: &Report) {
    if report.queries.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Query throughput\n\n\
         | query | clients | path | req/s | median ms | p99 ms | errors | client CPU µs/req |\n\
         |---|---:|---|---:|---:|---:|---:|---:|"
    );
    for row in &report.queries {
        for (path, measured) in [("direct", &row.direct), ("gateway", &row.gateway)] {
            if let Some(measured) = measured {
                let _ = writeln!(
                    out,
                    "| {} | {} | {path} | {} | {:.0} |",
                    row.what,
                    row.clients,
                    summary_cells(&measured.summary),
                    measured.client_cpu_us_per_request
                );
            }
        }
    }
    out.push('\n');
}

fn footprint(out: &mut String, report: &Report) {
    if report.memory.is_empty() && report.startup_seconds.is_none() {
        return;
    }
    let _ = writeln!(out, "## Footprint\n");
    if !report.memory.is_empty() {
        let _ = writeln!(
            out,
            "| service | peak RSS under command load MB | VmHWM (lifetime) MB |\n|---|---:|---:|"
        );
        for (name, memory) in &report.memory {
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {:.1} |",
                memory.peak_rss_mb, memory.hwm_mb
            );
        }
        out.push('\n');
    }
    match report.startup_seconds {
        Some(seconds) => {
            let _ = writeln!(
                out,
                "Start-up, `shop up --no-build` until every `/readyz` answers: {seconds:.2} s.\n"
            );
        }
        None => {
            let _ = writeln!(out, "Start-up time: not measured (the stack was already running; `--start-stack` measures it).\n");
        }
    }
}

/// The first error of every measurement that had errors, so that a figure
/// with failures behind it says what they were.
fn errors(out: &mut String, report: &Report) {
    let mut seen: Vec<(String, &Summary)> = Vec::new();
    for row in &report.commands {
        let paths = [
            ("inventory", row.direct.as_ref()),
            ("gateway", row.gateway.as_ref()),
        ];
        for (path, measured) in paths {
            if let Some(measured) = measured {
                seen.push((
                    format!("commands, {} clients, {path}", row.clients),
                    &measured.summary,
                ));
            }
        }
        if let Some(ceiling) = &row.ceiling {
            seen.push((format!("ceiling, {} connections", row.clients), ceiling));
        }
    }
    for (what, rate) in [("freshness", &report.freshness), ("saga", &report.saga)] {
        if let Some(rate) = rate {
            seen.push((what.to_owned(), &rate.summary));
        }
    }
    for row in &report.queries {
        for (path, measured) in [
            ("direct", row.direct.as_ref()),
            ("gateway", row.gateway.as_ref()),
        ] {
            if let Some(measured) = measured {
                seen.push((format!("{} {path}", row.what), &measured.summary));
            }
        }
    }
    let failed: Vec<_> = seen
        .into_iter()
        .filter(|(_, summary)| summary.errors > 0)
        .collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Errors seen
"
    );
    for (what, summary) in failed {
        let first = summary.first_error.as_deref().unwrap_or("unknown");
        let _ = writeln!(
            out,
            "- {what}: {} errors; the first: {first}",
            summary.errors
        );
    }
    out.push('\n');
}

fn summary_cells(summary: &Summary) -> String {
    format!(
        "{:.0} | {:.2} | {:.2} | {}",
        summary.throughput, summary.median_ms, summary.p99_ms, summary.errors
    )
}

//! What a smoke run checks: that every scenario it ran produced numbers.

use super::load::Summary;
use super::report::Report;
use super::{BenchArgs, Scenario};

/// In a smoke run, every scenario that ran must have produced numbers.
pub fn missing_numbers(args: &BenchArgs, report: &Report) -> Vec<String> {
    let mut expected: Vec<(String, Option<&Summary>)> = Vec::new();
    let mut missing = Vec::new();
    if args.wants(Scenario::Commands) {
        for &clients in &args.clients {
            let row = report.commands.iter().find(|row| row.clients == clients);
            let direct = row.and_then(|row| row.direct.as_ref());
            let gateway = row.and_then(|row| row.gateway.as_ref());
            expected.push((
                format!("commands direct at {clients}"),
                direct.map(|m| &m.summary),
            ));
            expected.push((
                format!("commands via gateway at {clients}"),
                gateway.map(|m| &m.summary),
            ));
            expected.push((
                format!("the ceiling at {clients}"),
                row.and_then(|row| row.ceiling.as_ref()),
            ));
        }
        if report.memory.is_empty() {
            missing.push("smoke: no service process was found for the footprint".to_owned());
        }
    }
    if args.wants(Scenario::Freshness) {
        expected.push((
            "freshness".to_owned(),
            report.freshness.as_ref().map(|rate| &rate.summary),
        ));
    }
    if args.wants(Scenario::Saga) {
        expected.push((
            "saga".to_owned(),
            report.saga.as_ref().map(|rate| &rate.summary),
        ));
    }
    if args.wants(Scenario::Queries) {
        for row in &report.queries {
            expected.push((
                format!("{} direct", row.what),
                row.direct.as_ref().map(|m| &m.summary),
            ));
            expected.push((
                format!("{} via gateway", row.what),
                row.gateway.as_ref().map(|m| &m.summary),
            ));
        }
        if report.queries.len() < 2 {
            missing.push("smoke: a query load had no keys to read".to_owned());
        }
    }
    for (what, summary) in expected {
        if summary.is_none_or(|summary| summary.operations == 0) {
            missing.push(format!("smoke: {what} produced no numbers"));
        }
    }
    missing
}

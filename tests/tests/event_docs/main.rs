//! `docs/events.md` and `docs/asyncapi.json` are generated from the code: the event
//! enums' schemas and versions in `domain`, and the consumers table in
//! `consumers.rs`. These tests fail when a committed document differs from what the
//! code generates, and when the consumers table disagrees with the code.
//!
//! Regenerate both documents with `UPDATE_DOCS=1 cargo test -p shop-tests --test event_docs`.

mod asyncapi;
mod catalog;
mod consumers;
mod markdown;

use std::path::PathBuf;

use catalog::catalog;
use consumers::{Handles, Role, CONSUMERS};

/// The command that rewrites the documents.
pub const REGENERATE: &str = "UPDATE_DOCS=1 cargo test -p shop-tests --test event_docs";

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Compares a committed document with the generated one, or writes it when
/// `UPDATE_DOCS` is set.
fn check_document(file: &str, generated: &str) {
    let path = docs_dir().join(file);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, generated).expect("write the document");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let first_difference = committed
        .lines()
        .zip(generated.lines())
        .enumerate()
        .find(|(_, (old, new))| old != new)
        .map(|(index, (old, new))| {
            format!(
                "line {}:\n  committed: {old}\n  generated: {new}",
                index + 1
            )
        })
        .unwrap_or_else(|| {
            let (old, new) = (committed.lines().count(), generated.lines().count());
            format!("the committed file has {old} lines, the generated one {new}")
        });
    panic!(
        "docs/{file} differs from the code; first difference at {first_difference}\n\
         Regenerate it with `{REGENERATE}` and review the diff."
    );
}

#[test]
fn docs_events_md_is_generated_from_the_code() {
    let (aggregates, shared) = catalog();
    check_document("events.md", &markdown::render(&aggregates, &shared));
}

#[test]
fn docs_asyncapi_json_is_generated_from_the_code() {
    let (aggregates, shared) = catalog();
    check_document("asyncapi.json", &asyncapi::render(&aggregates, &shared));
}

#[test]
fn every_event_type_a_consumer_lists_exists_on_its_stream() {
    let (aggregates, _) = catalog();
    for consumer in CONSUMERS {
        let aggregate = aggregates
            .iter()
            .find(|a| a.service == consumer.service && a.aggregate_type == consumer.aggregate_type)
            .unwrap_or_else(|| panic!("{consumer:?} reads an aggregate no stream carries"));
        let Handles::Only(types) = consumer.handles else {
            continue;
        };
        for event_type in types {
            assert!(
                aggregate.events.iter().any(|e| e.name == *event_type),
                "{} lists {event_type}, which is no {} event",
                consumer.durable_name,
                consumer.aggregate_type
            );
        }
    }
}

#[test]
fn the_consumers_table_lists_exactly_the_projections_sources() {
    let mut in_code = Vec::new();
    for projection in projections::app::PROJECTIONS {
        for source in projection.sources {
            in_code.push((
                projection.name,
                source.durable_name,
                source.service,
                source.aggregate_type,
                source.event_types,
            ));
        }
    }
    let mut in_table: Vec<_> = CONSUMERS
        .iter()
        .filter_map(|c| match c.role {
            Role::Projection(name) => {
                let event_types = match c.handles {
                    Handles::All => None,
                    Handles::Only(event_types) => Some(event_types),
                };
                Some((
                    name,
                    c.durable_name,
                    c.service,
                    c.aggregate_type,
                    event_types,
                ))
            }
            Role::Saga(_) => None,
        })
        .collect();
    in_code.sort();
    in_table.sort();
    assert_eq!(
        in_table, in_code,
        "consumers.rs disagrees with projections::app::PROJECTIONS"
    );
}

#[test]
fn every_consumer_is_listed_once() {
    let mut durable_names: Vec<&str> = CONSUMERS.iter().map(|c| c.durable_name).collect();
    durable_names.sort();
    let count = durable_names.len();
    durable_names.dedup();
    assert_eq!(durable_names.len(), count, "a durable name is listed twice");
}

#[test]
fn every_event_type_is_written_at_a_version_its_history_explains() {
    let (aggregates, _) = catalog();
    for event in aggregates.iter().flat_map(|a| &a.events) {
        let expected = event.changes.last().map_or("1.0", |change| change.version);
        assert_eq!(event.version, expected, "{}", event.name);
    }
}

//! Renders `docs/events.md` from the catalogue and the consumers table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::catalog::{fields, AggregateEvents, EventType};
use crate::consumers::{Consumer, Role, CONSUMERS};
use crate::REGENERATE;

/// The whole of `docs/events.md`.
pub fn render(aggregates: &[AggregateEvents], shared: &BTreeMap<String, Value>) -> String {
    let mut out = String::new();
    intro(&mut out, aggregates);
    for aggregate in aggregates {
        let _ = writeln!(
            out,
            "## {} (`{}` stream)\n",
            aggregate.aggregate_type, aggregate.service
        );
        for event in &aggregate.events {
            event_section(&mut out, aggregate, event);
        }
    }
    types_section(&mut out, shared);
    out
}

fn intro(out: &mut String, aggregates: &[AggregateEvents]) {
    let _ = writeln!(
        out,
        "# Events\n\n\
         <!-- Generated from the code; do not edit. Regenerate with `{REGENERATE}`. -->\n\n\
         Every event type of every aggregate, with its payload fields, its versions, its\n\
         NATS subject and the projections and saga reactions that consume it. The same\n\
         source renders [`asyncapi.json`](asyncapi.json), an AsyncAPI 3.0 document of the\n\
         four streams.\n\n\
         Each event travels as an Envelope (`platform::Envelope`, as `GET /api/{{kind}}/{{id}}/events` returns it): `payload` holds the fields\n\
         below, and `event_version` says which version of them. The relay publishes the\n\
         events table as it is stored, so events written before a schema change arrive at\n\
         their old version; `Envelope::decode` and the event store lift them to the current\n\
         one with the upcasters in `domain` (see [Changing an event](../README.md#changing-an-event)).\n\n\
         | stream | subjects | aggregates |\n|---|---|---|"
    );
    let mut services: Vec<&str> = aggregates.iter().map(|a| a.service).collect();
    services.dedup();
    for service in services {
        let types: Vec<String> = aggregates
            .iter()
            .filter(|a| a.service == service)
            .map(|a| format!("`{}`", a.aggregate_type))
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | `{service}.<AggregateType>.<aggregate_id>.<EventType>` | {} |",
            service.to_uppercase(),
            types.join(", ")
        );
    }
    out.push('\n');
}

fn event_section(out: &mut String, aggregate: &AggregateEvents, event: &EventType) {
    let _ = writeln!(out, "### {}\n", event.name);
    if !event.description.is_empty() {
        let _ = writeln!(out, "{}\n", event.description.replace('\n', " "));
    }
    let _ = writeln!(
        out,
        "- Subject: `{}.{}.<aggregate_id>.{}`\n- Version: `{}`",
        aggregate.service, aggregate.aggregate_type, event.name, event.version
    );
    let consumers = consumers_of(aggregate, &event.name);
    let _ = writeln!(out, "- Consumed by: {}\n", consumers);
    field_table(out, &event.schema);
    for change in event.changes.iter().rev() {
        let _ = writeln!(
            out,
            "Version `{}` (from `{}`): {}\n\nFields at version `{}`:\n",
            change.version, change.previous_version, change.summary, change.previous_version
        );
        field_table(out, &change.previous_schema);
    }
}

fn consumers_of(aggregate: &AggregateEvents, event_type: &str) -> String {
    let names: Vec<String> = CONSUMERS
        .iter()
        .filter(|c| c.service == aggregate.service && c.aggregate_type == aggregate.aggregate_type)
        .filter(|c| c.handles(event_type))
        .map(describe)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn describe(consumer: &Consumer) -> String {
    match consumer.role {
        Role::Projection(name) => format!("projection `{name}` (`{}`)", consumer.durable_name),
        Role::Saga(service) => format!("{service} saga (`{}`)", consumer.durable_name),
    }
}

fn field_table(out: &mut String, schema: &Value) {
    let fields = fields(schema);
    if fields.is_empty() {
        out.push_str("No fields: the payload is `{}`.\n\n");
        return;
    }
    out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
    for field in fields {
        let required = if field.required { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "| `{}` | {} | {required} | {} |",
            field.name, field.type_name, field.description
        );
    }
    out.push('\n');
}

fn types_section(out: &mut String, shared: &BTreeMap<String, Value>) {
    out.push_str("## Types used in payloads\n\n");
    for (name, schema) in shared {
        let _ = writeln!(out, "### {name}\n");
        if let Some(description) = schema["description"].as_str() {
            let _ = writeln!(out, "{}\n", description.trim().replace('\n', " "));
        }
        if let Some(values) = schema["enum"].as_array() {
            let words: Vec<String> = values
                .iter()
                .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
                .collect();
            let _ = writeln!(out, "One of {}.\n", words.join(", "));
        } else {
            field_table(out, schema);
        }
    }
}

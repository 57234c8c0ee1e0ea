//! Renders `docs/asyncapi.json`: an AsyncAPI 3.0 document of the four streams, with
//! one channel per event type and one message per event type.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::catalog::{AggregateEvents, EventType};
use crate::REGENERATE;

/// The whole of `docs/asyncapi.json`, pretty-printed with a final newline.
pub fn render(aggregates: &[AggregateEvents], shared: &BTreeMap<String, Value>) -> String {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    // utoipa refers to `#/components/schemas/X`, which is where AsyncAPI 3.0 keeps
    // schemas too, so the references stay as they are.
    let mut schemas: Map<String, Value> = shared.clone().into_iter().collect();
    schemas.insert("Envelope".into(), envelope_schema());
    for aggregate in aggregates {
        for event in &aggregate.events {
            let key = format!(
                "{}.{}.{}",
                aggregate.service, aggregate.aggregate_type, event.name
            );
            let payloads = payload_schemas(&key, event, &mut schemas);
            messages.insert(key.clone(), message(aggregate, event, payloads));
            channels.insert(key.clone(), channel(aggregate, event, &key));
            operations.insert(
                format!("receive.{key}"),
                json!({
                    "action": "receive",
                    "channel": {"$ref": format!("#/channels/{key}")},
                    "messages": [{"$ref": format!("#/channels/{key}/messages/{}", event.name)}],
                }),
            );
        }
    }
    let document = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shop events",
            "version": "1.0.0",
            "description": format!(
                "The events of the shop's four JetStream streams, CUSTOMERS, INVENTORY, ORDERS \
                 and PAYMENTS, on subjects `<service>.<AggregateType>.<aggregate_id>.<EventType>`. \
                 With STREAM_NAMESPACE set, stream names and subjects are prefixed by it. \
                 Generated from the code; regenerate with `{REGENERATE}`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The NATS of `shop up` (NATS_URL).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
        },
    });
    let mut text = serde_json::to_string_pretty(&document).expect("JSON");
    text.push('\n');
    text
}

fn channel(aggregate: &AggregateEvents, event: &EventType, key: &str) -> Value {
    json!({
        "address": format!("{}.{}.{{aggregate_id}}.{}", aggregate.service, aggregate.aggregate_type, event.name),
        "title": event.name,
        "description": format!("`{}` events of `{}` aggregates, in the {} stream.", event.name, aggregate.aggregate_type, aggregate.service.to_uppercase()),
        "parameters": {
            "aggregate_id": {"description": "The aggregate's id: a UUID, or the SKU of a product."}
        },
        "messages": {event.name.clone(): {"$ref": format!("#/components/messages/{key}")}},
        "tags": [{"name": aggregate.service.to_uppercase()}],
    })
}

fn message(aggregate: &AggregateEvents, event: &EventType, payloads: Vec<Value>) -> Value {
    let versions: Vec<&str> = event
        .changes
        .iter()
        .map(|change| change.previous_version)
        .chain([event.version])
        .collect();
    let payload = if payloads.len() == 1 {
        payloads.into_iter().next().unwrap_or_default()
    } else {
        json!({"oneOf": payloads})
    };
    json!({
        "name": event.name,
        "title": format!("{} {}", aggregate.aggregate_type, event.name),
        "summary": event.description,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": ["Nats-Msg-Id"],
            "properties": {
                "Nats-Msg-Id": {"type": "string", "description": "The event id, `<service>:<AggregateType>:<aggregate_id>:<sequence>`; JetStream de-duplicates on it."},
                "Correlation-Id": {"type": "string", "description": "The id of the request that started the chain (`X-Request-Id`)."},
                "Causation-Id": {"type": "string", "description": "The id of the command or event that caused this event."},
                "traceparent": {"type": "string", "description": "W3C trace context, when tracing is on."},
            },
        },
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {
                    "type": "object",
                    "properties": {
                        "service": {"const": aggregate.service},
                        "aggregate_type": {"const": aggregate.aggregate_type},
                        "event_type": {"const": event.name},
                        "event_version": {"enum": versions},
                        "payload": payload,
                    },
                },
            ],
        },
    })
}

/// The payload schema of every version, current first, each stored under
/// `<key>.v<version>` in the schemas.
fn payload_schemas(key: &str, event: &EventType, schemas: &mut Map<String, Value>) -> Vec<Value> {
    let mut versions = vec![(event.version, &event.schema)];
    versions.extend(
        event
            .changes
            .iter()
            .rev()
            .map(|c| (c.previous_version, &c.previous_schema)),
    );
    versions
        .into_iter()
        .map(|(version, schema)| {
            let name = format!("{key}.v{version}");
            let mut schema = schema.clone();
            if let Value::Object(object) = &mut schema {
                object.insert("title".into(), json!(format!("{} {version}", event.name)));
            }
            schemas.insert(name.clone(), schema);
            json!({"$ref": format!("#/components/schemas/{name}")})
        })
        .collect()
}

fn envelope_schema() -> Value {
    serde_json::to_value(<platform::Envelope as utoipa::PartialSchema>::schema()).expect("JSON")
}

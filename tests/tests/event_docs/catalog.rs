//! The catalogue of event types that both documents are rendered from: every
//! aggregate's events with their JSON schemas (derived with `utoipa::ToSchema` on the
//! event enums), their versions and schema changes (`VersionedEvent`), and the NATS
//! stream that carries them.

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use domain::customers::Customer;
use domain::inventory::Product;
use domain::orders::Order;
use domain::payments::{CustomerCredit, Payment};
use domain::versioning::{VersionedEvent, FIRST_VERSION};
use serde_json::Value;
use utoipa::ToSchema;

/// One aggregate type's events and the service whose stream carries them.
pub struct AggregateEvents {
    /// The command service, also the first token of the subject, such as `orders`.
    pub service: &'static str,
    /// The aggregate type, the second token of the subject, such as `Order`.
    pub aggregate_type: &'static str,
    /// Its event types, in the order the enum declares them.
    pub events: Vec<EventType>,
}

/// One event type: its current payload schema and its history.
pub struct EventType {
    /// The name, the last token of the subject, such as `OrderCancelled`.
    pub name: String,
    /// The doc comment of the enum variant.
    pub description: String,
    /// The JSON schema of the payload fields at the current version.
    pub schema: Value,
    /// The version new events are written with.
    pub version: &'static str,
    /// Earlier versions, oldest first.
    pub changes: Vec<Change>,
}

/// A schema change that made a new version.
pub struct Change {
    /// The version the change introduced.
    pub version: &'static str,
    /// The version before it.
    pub previous_version: &'static str,
    /// What changed.
    pub summary: &'static str,
    /// The JSON schema of the payload fields before the change.
    pub previous_schema: Value,
}

/// Every aggregate of the shop, in the order of the streams' names, with the schemas
/// they refer to (such as `OrderStatus`), by name.
pub fn catalog() -> (Vec<AggregateEvents>, BTreeMap<String, Value>) {
    let mut shared = BTreeMap::new();
    let aggregates = vec![
        aggregate::<Customer>(customers::SERVICE, &mut shared),
        aggregate::<Product>(inventory::SERVICE, &mut shared),
        aggregate::<Order>(orders::SERVICE, &mut shared),
        aggregate::<Payment>(payments::SERVICE, &mut shared),
        aggregate::<CustomerCredit>(payments::SERVICE, &mut shared),
    ];
    (aggregates, shared)
}

fn aggregate<A>(service: &'static str, shared: &mut BTreeMap<String, Value>) -> AggregateEvents
where
    A: Aggregate,
    A::Event: VersionedEvent + ToSchema,
{
    let mut referenced = Vec::new();
    <A::Event as ToSchema>::schemas(&mut referenced);
    for (name, schema) in referenced {
        shared.insert(name, to_json(schema));
    }
    let schema = to_json(<A::Event as utoipa::PartialSchema>::schema());
    let variants = schema["oneOf"].as_array().cloned().unwrap_or_default();
    let events = variants.iter().map(event_type::<A::Event>).collect();
    AggregateEvents {
        service,
        aggregate_type: A::TYPE,
        events,
    }
}

/// An event type from one variant of the enum's `oneOf`: an object with a single
/// property, the variant's name, whose value is the payload.
fn event_type<E: VersionedEvent>(variant: &Value) -> EventType {
    let (name, fields) = variant["properties"]
        .as_object()
        .and_then(|properties| properties.iter().next())
        .expect("an externally tagged variant");
    let description = [&fields["description"], &variant["description"]]
        .into_iter()
        .find_map(Value::as_str)
        .unwrap_or_default();
    let mut history = Vec::new();
    let mut previous_version = FIRST_VERSION;
    for change in E::SCHEMA_CHANGES.iter().filter(|c| c.event_type == name) {
        history.push(Change {
            version: change.version,
            previous_version,
            summary: change.summary,
            previous_schema: to_json((change.previous_schema)()),
        });
        previous_version = change.version;
    }
    EventType {
        name: name.clone(),
        description: description.trim().to_owned(),
        schema: fields.clone(),
        version: E::current_version(name),
        changes: history,
    }
}

fn to_json(schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) -> Value {
    serde_json::to_value(schema).expect("a schema serializes to JSON")
}

/// One field of a payload schema: its name, type, whether it is required, and its
/// description.
pub struct Field {
    pub name: String,
    pub type_name: String,
    pub required: bool,
    pub description: String,
}

/// The fields of an object schema: the required ones in the order the enum declares
/// them, then the optional ones by name.
pub fn fields(schema: &Value) -> Vec<Field> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    let mut fields: Vec<Field> = properties
        .iter()
        .map(|(name, property)| Field {
            name: name.clone(),
            type_name: type_name(property),
            required: required.contains(&name.as_str()),
            description: property["description"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .replace('\n', " "),
        })
        .collect();
    let position = |field: &Field| {
        let declared = required.iter().position(|name| *name == field.name);
        declared.unwrap_or(required.len())
    };
    fields.sort_by_key(position);
    fields
}

/// A short name for a property's type, such as `uuid`, `integer ≥ 0`, `string or
/// null`, or a link to a shared type's section.
pub fn type_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = schema[combinator].as_array() {
            let names: Vec<String> = options.iter().map(type_name).collect();
            return names.join(" or ");
        }
    }
    match &schema["type"] {
        Value::Array(types) => {
            let mut single = schema.clone();
            let names: Vec<String> = types
                .iter()
                .map(|each| {
                    single["type"] = each.clone();
                    type_name(&single)
                })
                .collect();
            names.join(" or ")
        }
        Value::String(kind) => match kind.as_str() {
            "array" => format!("array of {}", type_name(&schema["items"])),
            "integer" if schema["minimum"].as_f64() == Some(0.0) => "integer ≥ 0".to_owned(),
            "integer" => "integer".to_owned(),
            "string" => match schema["format"].as_str() {
                Some(format) => format.to_owned(),
                None => "string".to_owned(),
            },
            other => other.to_owned(),
        },
        _ => "any".to_owned(),
    }
}

//! The Envelope: one stored event as it travels on NATS and as the event-stream
//! endpoints return it. Its shape is part of the outward contract (CONTRACT.md).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::versioning::{self, VersionedEvent};
use serde::de::value::{MapAccessDeserializer, MapDeserializer};
use serde::{Deserialize, Serialize};

/// Metadata key for the id of the request that started a chain of events.
pub const CORRELATION_ID: &str = "correlation_id";
/// Metadata key for the id of the command or event that directly caused this one.
pub const CAUSATION_ID: &str = "causation_id";

/// One event with everything a consumer needs to place it: who wrote it, where it
/// sits in its aggregate and in its service's log, and why it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Envelope {
    /// `<service>:<AggregateType>:<aggregate_id>:<sequence>`; also the `Nats-Msg-Id`.
    pub event_id: String,
    /// The command service whose event store holds the event, such as `inventory`.
    pub service: String,
    /// The aggregate type, such as `Product`.
    pub aggregate_type: String,
    /// The aggregate instance, such as a sku or an order id.
    pub aggregate_id: String,
    /// Position of the event within its aggregate, from 1.
    pub sequence: i64,
    /// Position of the event in its service's log, in insert order.
    pub global_position: i64,
    /// The event's name, such as `Restocked`.
    pub event_type: String,
    /// Schema version of the payload.
    pub event_version: String,
    /// The event's fields.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// `correlation_id` and `causation_id`, and any other context of the command.
    pub metadata: HashMap<String, String>,
    /// When the event was stored.
    pub recorded_at: DateTime<Utc>,
}

impl Envelope {
    /// The globally unique id of an event, used for JetStream de-duplication.
    pub fn event_id_for(
        service: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> String {
        format!("{service}:{aggregate_type}:{aggregate_id}:{sequence}")
    }

    /// The NATS subject: `<service>.<AggregateType>.<aggregate_id>.<EventType>`.
    pub fn subject(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.service, self.aggregate_type, self.aggregate_id, self.event_type
        )
    }

    /// The correlation id carried in the metadata, if any.
    pub fn correlation_id(&self) -> Option<&str> {
        self.metadata.get(CORRELATION_ID).map(String::as_str)
    }

    /// Decodes the payload as a domain event enum that uses serde's default
    /// externally tagged form (`{"EventType": {fields}}`), as cqrs-es stores it.
    /// A payload of an older `event_version` is first lifted to the current one by
    /// the enum's upcasters, the same ones the event store loads with.
    pub fn decode<E: VersionedEvent>(&self) -> Result<E, serde_json::Error> {
        let changed = E::SCHEMA_CHANGES
            .iter()
            .any(|change| change.event_type == self.event_type);
        if !changed {
            // Most event types never changed; they skip building the upcasters, and
            // read the payload where it is, as if tagged, rather than a tagged copy.
            let tagged =
                MapDeserializer::new(std::iter::once((self.event_type.as_str(), &self.payload)));
            return E::deserialize(MapAccessDeserializer::new(tagged));
        }
        let tagged = serde_json::json!({ self.event_type.as_str(): self.payload });
        let received = SerializedEvent::new(
            self.aggregate_id.clone(),
            usize::try_from(self.sequence).unwrap_or_default(),
            self.aggregate_type.clone(),
            self.event_type.clone(),
            self.event_version.clone(),
            tagged,
            serde_json::Value::Null,
        );
        let current = versioning::upcast(received, &E::upcasters());
        serde_json::from_value(current.payload)
    }
}

/// Reads the fields of an externally tagged payload (`{"EventType": {fields}}`), as
/// postgres-es stores it, leaving other shapes as they are.
pub fn untag_payload(event_type: &str, stored: serde_json::Value) -> serde_json::Value {
    match stored {
        serde_json::Value::Object(mut map) if map.len() == 1 && map.contains_key(event_type) => {
            map.remove(event_type).unwrap_or_default()
        }
        other => other,
    }
}

/// The answer of `GET /api/{kind}/{id}/events`: one aggregate's events in order.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventStream {
    /// The aggregate type, such as `Product`.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// Its events, in sequence order.
    pub events: Vec<Envelope>,
}

/// The answer of `GET /api/{kind}/{id}/state`: one aggregate as it was after event
/// `version`, or as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AggregateState {
    /// The aggregate type, such as `Order`.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// The sequence of the last event folded into `state`.
    pub version: i64,
    /// The aggregate, serialized as the event store snapshots it.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
}

/// The query of the state endpoints: which version to travel back to.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StateQuery {
    /// The aggregate's version, from 1: the state after that event. The current
    /// state when left out; a version above the last one is 404, not clamped.
    pub version: Option<i64>,
}

impl StateQuery {
    /// The version asked for; below 1 is a 422, since no state precedes event 1.
    pub fn version(&self) -> Result<Option<i64>, crate::http::ApiError> {
        match self.version {
            Some(version) if version < 1 => Err(crate::http::ApiError::validation(vec![
                crate::http::FieldError::new("version", "must be 1 or more"),
            ])),
            version => Ok(version),
        }
    }

    /// The 404 of a state endpoint for `what`, such as `order 0190…`.
    pub fn not_found(&self, what: &str) -> crate::http::ApiError {
        match self.version {
            Some(version) => {
                crate::http::ApiError::not_found(format!("no {what} at version {version}"))
            }
            None => crate::http::ApiError::not_found(format!("no {what}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::orders::{OrderEvent, OrderStatus};

    fn cancellation(event_version: &str, payload: serde_json::Value) -> Envelope {
        Envelope {
            event_id: "orders:Order:0190:2".into(),
            service: "orders".into(),
            aggregate_type: "Order".into(),
            aggregate_id: "0190".into(),
            sequence: 2,
            global_position: 2,
            event_type: "OrderCancelled".into(),
            event_version: event_version.into(),
            payload,
            metadata: HashMap::new(),
            recorded_at: DateTime::<Utc>::default(),
        }
    }

    #[test]
    fn decoding_lifts_a_version_one_payload_to_the_current_event() {
        let v1 = cancellation(
            "1.0",
            serde_json::json!({"reason": "late", "was": "PENDING"}),
        );
        let expected = OrderEvent::OrderCancelled {
            reason: Some("late".into()),
            cancelled_from: OrderStatus::Pending,
        };
        assert_eq!(v1.decode::<OrderEvent>().unwrap(), expected);
        let v2 = cancellation(
            "2.0",
            serde_json::json!({"reason": "late", "cancelled_from": "PENDING"}),
        );
        assert_eq!(v2.decode::<OrderEvent>().unwrap(), expected);
    }

    #[test]
    fn a_payload_that_fits_no_version_is_an_error() {
        let broken = cancellation("1.0", serde_json::json!({"reason": "late"}));
        assert!(broken.decode::<OrderEvent>().is_err());
    }

    #[test]
    fn untagging_removes_only_the_matching_event_name() {
        let stored = serde_json::json!({"Restocked": {"quantity": 5}});
        assert_eq!(
            untag_payload("Restocked", stored.clone()),
            serde_json::json!({"quantity": 5})
        );
        assert_eq!(untag_payload("PriceChanged", stored.clone()), stored);
    }
}

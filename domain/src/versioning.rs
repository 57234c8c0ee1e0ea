//! Versions of the event payloads. An event type starts at version `1.0`; each later
//! version is a [`SchemaChange`] that says what changed and how a payload of the version
//! before is lifted to it. Each aggregate's event enum lists its changes in
//! [`VersionedEvent::SCHEMA_CHANGES`], the one registry that decides the version new
//! events are written with, the upcasters of the event store, and the upcasting of
//! Envelopes received from NATS.

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster, SerializedEvent};
use cqrs_es::DomainEvent;
use serde_json::Value;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

/// The version of every event type that has never changed.
pub const FIRST_VERSION: &str = "1.0";

/// One change of an event type's payload schema.
#[derive(Debug, Clone, Copy)]
pub struct SchemaChange {
    /// The event type that changed, such as `OrderCancelled`.
    pub event_type: &'static str,
    /// The version the change introduced, such as `2.0`. Events of any lower version
    /// are lifted to it.
    pub version: &'static str,
    /// What changed, in a sentence, for `docs/events.md`.
    pub summary: &'static str,
    /// The schema of the payload fields before the change.
    pub previous_schema: fn() -> RefOr<Schema>,
    /// Lifts the payload fields (`{field: value}`, without the event-type tag) of the
    /// version before to this version. A payload it cannot read is returned as it is,
    /// so that decoding it reports what is wrong.
    pub upcast: fn(Value) -> Value,
}

/// An aggregate's event enum together with the history of its payload schemas.
pub trait VersionedEvent: DomainEvent {
    /// The changes of this enum's event types, oldest first.
    const SCHEMA_CHANGES: &'static [SchemaChange];

    /// The version an event of `event_type` is written with now.
    fn current_version(event_type: &str) -> &'static str {
        Self::SCHEMA_CHANGES
            .iter()
            .rev()
            .find(|change| change.event_type == event_type)
            .map_or(FIRST_VERSION, |change| change.version)
    }

    /// The cqrs-es upcasters of [`Self::SCHEMA_CHANGES`], in the order they apply.
    /// They work on payloads as postgres-es stores them: `{"EventType": {fields}}`.
    fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
        Self::SCHEMA_CHANGES.iter().map(upcaster).collect()
    }
}

/// The upcaster of one change: a cqrs-es semantic-version upcaster that applies the
/// change's `upcast` inside the event-type tag.
fn upcaster(change: &SchemaChange) -> Box<dyn EventUpcaster> {
    let SchemaChange {
        event_type, upcast, ..
    } = *change;
    // `new` panics on a version that is not `major[.minor[.patch]]`; every version in
    // `SCHEMA_CHANGES` is a literal, and a test parses them all.
    Box::new(SemanticVersionEventUpcaster::new(
        event_type,
        change.version,
        Box::new(move |payload| upcast_tagged(event_type, payload, upcast)),
    ))
}

/// Applies `upcast` to the fields of a stored payload, `{"EventType": {fields}}`; any
/// other shape is left for the decoder to report.
fn upcast_tagged(event_type: &str, payload: Value, upcast: fn(Value) -> Value) -> Value {
    match payload {
        Value::Object(mut tagged) if tagged.len() == 1 => match tagged.remove(event_type) {
            Some(fields) => Value::Object(
                [(event_type.to_owned(), upcast(fields))]
                    .into_iter()
                    .collect(),
            ),
            None => Value::Object(tagged),
        },
        other => other,
    }
}

/// Lifts a stored or received event to the current version by running, in order,
/// every upcaster that applies to it, as the cqrs-es event store does when it loads.
pub fn upcast(event: SerializedEvent, upcasters: &[Box<dyn EventUpcaster>]) -> SerializedEvent {
    upcasters.iter().fold(event, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::customers::CustomerEvent;
    use crate::inventory::ProductEvent;
    use crate::orders::OrderEvent;
    use crate::payments::{CreditEvent, PaymentEvent};

    fn stored(event_type: &str, event_version: &str, payload: Value) -> SerializedEvent {
        SerializedEvent::new(
            "0190".into(),
            1,
            "Order".into(),
            event_type.into(),
            event_version.into(),
            payload,
            json!({}),
        )
    }

    #[test]
    fn a_version_one_cancellation_is_lifted_to_version_two() {
        let v1 = stored(
            "OrderCancelled",
            "1.0",
            json!({"OrderCancelled": {"reason": "too slow", "was": "CONFIRMED"}}),
        );
        let lifted = upcast(v1, &OrderEvent::upcasters());
        assert_eq!(
            lifted.payload,
            json!({"OrderCancelled": {"reason": "too slow", "cancelled_from": "CONFIRMED"}})
        );
        assert_eq!(lifted.event_version, "2.0.0");
    }

    #[test]
    fn a_current_event_is_left_as_it_is() {
        let payload = json!({"OrderCancelled": {"reason": null, "cancelled_from": "PENDING"}});
        let v2 = stored("OrderCancelled", "2.0", payload.clone());
        assert_eq!(upcast(v2, &OrderEvent::upcasters()).payload, payload);
        let other = json!({"OrderShipped": {}});
        let shipped = stored("OrderShipped", "1.0", other.clone());
        assert_eq!(upcast(shipped, &OrderEvent::upcasters()).payload, other);
    }

    #[test]
    fn new_events_are_written_at_the_version_of_their_last_change() {
        assert_eq!(OrderEvent::current_version("OrderCancelled"), "2.0");
        assert_eq!(OrderEvent::current_version("OrderPlaced"), FIRST_VERSION);
    }

    #[test]
    fn every_change_names_a_valid_version_above_the_first() {
        let changes = [
            CustomerEvent::SCHEMA_CHANGES,
            ProductEvent::SCHEMA_CHANGES,
            OrderEvent::SCHEMA_CHANGES,
            PaymentEvent::SCHEMA_CHANGES,
            CreditEvent::SCHEMA_CHANGES,
        ];
        for change in changes.into_iter().flatten() {
            let lifts = SemanticVersionEventUpcaster::new(
                change.event_type,
                change.version,
                Box::new(|payload| payload),
            );
            assert!(
                lifts.can_upcast(change.event_type, FIRST_VERSION),
                "{}",
                change.version
            );
        }
    }
}

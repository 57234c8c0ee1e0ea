//! Reading what a projection needs out of an Envelope: its domain event, its
//! aggregate id as a UUID, and the words that enums are written as.

use anyhow::Context;
use domain::versioning::VersionedEvent;
use platform::Envelope;
use serde::Serialize;
use uuid::Uuid;

/// Decodes the payload as the domain event enum `E`, lifted to its current version,
/// naming the event on failure.
pub(crate) fn decode<E: VersionedEvent>(envelope: &Envelope) -> anyhow::Result<E> {
    envelope
        .decode()
        .with_context(|| format!("decode {} ({})", envelope.event_type, envelope.event_id))
}

/// The aggregate id as a UUID: orders, customers and payments are keyed by one.
pub(crate) fn aggregate_uuid(envelope: &Envelope) -> anyhow::Result<Uuid> {
    Uuid::parse_str(&envelope.aggregate_id)
        .with_context(|| format!("aggregate id {:?} is not a UUID", envelope.aggregate_id))
}

/// The word a status or reason is written as in events and the query API, such
/// as `OUT_OF_STOCK`: the domain enums own that spelling through serde.
pub(crate) fn json_word<T: Serialize>(value: &T) -> anyhow::Result<String> {
    match serde_json::to_value(value).context("serialize an enum")? {
        serde_json::Value::String(word) => Ok(word),
        other => anyhow::bail!("{other} is not a single word"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::orders::OrderRejectionReason;

    #[test]
    fn a_reason_is_written_as_its_capitalized_word() {
        let word = json_word(&OrderRejectionReason::OutOfStock).unwrap();
        assert_eq!(word, "OUT_OF_STOCK");
    }
}

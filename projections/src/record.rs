//! Recording event streams from NATS: every Envelope of a service's stream, read
//! from its start by an ephemeral consumer, for replays and fixtures.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use platform::nats::StreamSpec;
use platform::Envelope;

/// Most messages asked for in one fetch.
const FETCH_SIZE: usize = 512;

/// How long one fetch waits for its first message; a stream that has stopped
/// answering within it is an error, not the end of the stream.
const FETCH_WAIT: Duration = Duration::from_secs(5);

/// Reads a stream from its first message up to `up_to` (its last message when
/// `None`, or when `up_to` is beyond it), in stream order, with an ephemeral
/// consumer that acks nothing. A message that is not an Envelope is skipped with
/// a warning, as the worker's consumers terminate it. A missing stream is empty.
pub async fn read_stream(
    jetstream: &jetstream::Context,
    spec: &StreamSpec,
    up_to: Option<u64>,
) -> anyhow::Result<Vec<Envelope>> {
    let Ok(mut stream) = jetstream.get_stream(&spec.name).await else {
        return Ok(Vec::new());
    };
    let info = stream
        .info()
        .await
        .with_context(|| format!("read stream {}", spec.name))?;
    let last = up_to.map_or(info.state.last_sequence, |n| {
        n.min(info.state.last_sequence)
    });
    if last == 0 || info.state.messages == 0 {
        return Ok(Vec::new());
    }
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            filter_subject: spec.all_subjects(),
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .with_context(|| format!("create a reader of {}", spec.name))?;
    let mut envelopes = Vec::new();
    let mut position = 0;
    while position < last {
        let mut messages = consumer
            .fetch()
            .max_messages(FETCH_SIZE)
            .expires(FETCH_WAIT)
            .messages()
            .await
            .with_context(|| format!("fetch from {}", spec.name))?;
        let before = position;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("read {}: {e}", spec.name))?;
            let info = message
                .info()
                .map_err(|e| anyhow::anyhow!("read the metadata of a message: {e}"))?;
            position = info.stream_sequence;
            if position > last {
                break;
            }
            match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(envelope) => envelopes.push(envelope),
                Err(error) => {
                    tracing::warn!(stream = %spec.name, position, %error, "not an Envelope, skipped")
                }
            }
        }
        anyhow::ensure!(
            position > before,
            "stream {} stopped answering at {position} of {last}",
            spec.name
        );
    }
    Ok(envelopes)
}

/// Merges whole streams into one sequence, keeping each stream's own order and
/// otherwise ordering by `recorded_at`: the order a reader of all of them might
/// well have seen. Nothing may rely on an order between streams.
pub fn merge(streams: Vec<Vec<Envelope>>) -> Vec<Envelope> {
    let total = streams.iter().map(Vec::len).sum();
    let mut queues: Vec<std::collections::VecDeque<Envelope>> =
        streams.into_iter().map(Into::into).collect();
    let mut merged = Vec::with_capacity(total);
    loop {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(index, queue)| queue.front().map(|e| (e.recorded_at, index)))
            .min();
        let Some((_, index)) = next else {
            return merged;
        };
        // The index was just found with a front element.
        merged.extend(queues[index].pop_front());
    }
}

/// Reads the streams of `services` in `namespace` whole (or up to the sequence
/// given per service) and merges them (see [`merge`]).
pub async fn read_streams(
    jetstream: &jetstream::Context,
    namespace: &str,
    services: &[&str],
    up_to: &BTreeMap<String, u64>,
) -> anyhow::Result<Vec<Envelope>> {
    let mut streams = Vec::new();
    for service in services {
        let spec = StreamSpec::in_namespace(namespace, service);
        streams.push(read_stream(jetstream, &spec, up_to.get(*service).copied()).await?);
    }
    Ok(merge(streams))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(service: &str, sequence: i64, second: u32) -> Envelope {
        let recorded_at = chrono::DateTime::from_timestamp(1_800_000_000 + i64::from(second), 0)
            .expect("a valid time");
        Envelope {
            event_id: Envelope::event_id_for(service, "Order", "a", sequence),
            service: service.to_owned(),
            aggregate_type: "Order".to_owned(),
            aggregate_id: "a".to_owned(),
            sequence,
            global_position: sequence,
            event_type: "OrderPlaced".to_owned(),
            event_version: "1.0".to_owned(),
            payload: serde_json::json!({}),
            metadata: Default::default(),
            recorded_at,
        }
    }

    #[test]
    fn merging_interleaves_by_time_but_never_reorders_a_stream() {
        // The second stream's first event is recorded after its second one: stream
        // order wins over time within a stream.
        let orders = vec![event("orders", 1, 1), event("orders", 2, 4)];
        let payments = vec![event("payments", 1, 3), event("payments", 2, 2)];
        let merged: Vec<(String, i64)> = merge(vec![orders, payments])
            .into_iter()
            .map(|e| (e.service, e.sequence))
            .collect();
        let expected = [
            ("orders", 1),
            ("payments", 1),
            ("payments", 2),
            ("orders", 2),
        ];
        let expected: Vec<(String, i64)> = expected
            .into_iter()
            .map(|(s, n)| (s.to_owned(), n))
            .collect();
        assert_eq!(merged, expected);
    }
}

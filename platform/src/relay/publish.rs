//! Publishing a batch to JetStream without losing, duplicating or reordering.
//!
//! Acks are pipelined: the batch is sent, then all acks are awaited together. A
//! pipeline alone could reorder: if NATS drops one message in a reconnect and takes
//! the next ones on the new connection, the retry would append the lost one after
//! them. So the first message of a batch goes alone, and each later one carries
//! `Nats-Expected-Last-Sequence`: the server stores it only right behind its
//! predecessor. The server checks `Nats-Msg-Id` before that header (measured on
//! 2.9.10), so a retried batch's duplicates are acknowledged and the rest still fit.

use std::future::IntoFuture;

use anyhow::Context;
use async_nats::jetstream::{self, message::PublishMessage};

use crate::envelope::CAUSATION_ID;
use crate::event_store::EventRow;
use crate::nats::StreamSpec;
use crate::Envelope;

/// NATS header that carries the request id that started the chain.
pub const CORRELATION_ID_HEADER: &str = "Correlation-Id";
/// NATS header that carries the id of the command or event that caused this one.
pub const CAUSATION_ID_HEADER: &str = "Causation-Id";

/// Publishes `rows` in order and returns once JetStream has stored every one of
/// them, or fails at the first message it did not store.
pub(super) async fn publish_batch(
    jetstream: &jetstream::Context,
    stream: &StreamSpec,
    service: &str,
    rows: Vec<EventRow>,
) -> anyhow::Result<()> {
    let mut messages = rows
        .into_iter()
        .map(|row| message_for(stream, &row.into_envelope(service)));
    let Some(first) = messages.next().transpose()? else {
        return Ok(());
    };
    let (subject, message) = first;
    // Awaited alone: its predecessor is already stored, and its ack (a duplicate's
    // too) gives the stream sequence that the rest of the batch must follow.
    let first_ack = send(jetstream, subject, message)
        .await?
        .await
        .context("await the first publish ack")?;
    let mut acks = Vec::new();
    for (offset, next) in messages.enumerate() {
        let (subject, message) = next?;
        let predecessor = first_ack.sequence + offset as u64;
        let message = message.expected_last_sequence(predecessor);
        acks.push(send(jetstream, subject, message).await?.into_future());
    }
    futures::future::try_join_all(acks)
        .await
        .context("await publish acks")?;
    Ok(())
}

async fn send(
    jetstream: &jetstream::Context,
    subject: String,
    message: PublishMessage,
) -> anyhow::Result<jetstream::context::PublishAckFuture> {
    jetstream
        .send_publish(subject, message)
        .await
        .context("publish an event")
}

/// The subject and message of one event: the Envelope as JSON, identified by its
/// event id for de-duplication, with its correlation headers.
fn message_for(
    stream: &StreamSpec,
    envelope: &Envelope,
) -> anyhow::Result<(String, PublishMessage)> {
    let body = serde_json::to_vec(envelope).context("serialize the envelope")?;
    let mut message = PublishMessage::build()
        .payload(body.into())
        .message_id(&envelope.event_id);
    let causation_id = envelope.metadata.get(CAUSATION_ID).map(String::as_str);
    let headers = [
        (CORRELATION_ID_HEADER, envelope.correlation_id()),
        (CAUSATION_ID_HEADER, causation_id),
    ];
    for (name, value) in headers {
        if let Some(value) = value.filter(|value| is_header_value(value)) {
            message = message.header(name, value);
        }
    }
    Ok((stream.subject_for(envelope), message))
}

/// Whether a metadata value can travel as a header: a line break would end the
/// header block early, and an empty value says nothing.
fn is_header_value(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(char::is_control)
}

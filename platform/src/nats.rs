//! JetStream set-up: connecting, and the per-service stream that the relay writes
//! and consumers read.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};

use crate::Envelope;

/// How long JetStream remembers a `Nats-Msg-Id`; a relay that republishes within it
/// after a crash produces no duplicates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A service's JetStream stream: its name and the subject prefix its events carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream name, such as `INVENTORY`.
    pub name: String,
    /// First subject token(s), such as `inventory`; subjects are
    /// `<prefix>.<AggregateType>.<aggregate_id>.<EventType>`.
    pub subject_prefix: String,
}

impl StreamSpec {
    /// The contract's stream for a service: `INVENTORY` with subjects `inventory.>`.
    pub fn for_service(service: &str) -> Self {
        Self::in_namespace("", service)
    }

    /// A service's stream inside a namespace, which keeps several stacks (tests, or
    /// a second environment) apart on one NATS server: namespace `t1` gives
    /// `T1_INVENTORY` with subjects `t1.inventory.>`. The empty namespace is the
    /// contract's names.
    pub fn in_namespace(namespace: &str, service: &str) -> Self {
        if namespace.is_empty() {
            return Self {
                name: service.to_uppercase(),
                subject_prefix: service.to_owned(),
            };
        }
        Self {
            name: format!("{}_{}", namespace.to_uppercase(), service.to_uppercase()),
            subject_prefix: format!("{namespace}.{service}"),
        }
    }

    /// The wildcard that covers every subject of the stream.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// The subject an event is published on.
    pub fn subject_for(&self, envelope: &Envelope) -> String {
        format!(
            "{}.{}.{}.{}",
            self.subject_prefix,
            envelope.aggregate_type,
            envelope.aggregate_id,
            envelope.event_type
        )
    }
}

/// Connects to NATS, retrying in the background if the server is not up yet.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .with_context(|| format!("connect to NATS at {url}"))
}

/// Creates the stream when it is missing: file storage, limits retention, nothing
/// expires, and de-duplication by `Nats-Msg-Id` over [`DUPLICATE_WINDOW`].
///
/// Every service creates the streams it reads as well as its own, so several may
/// race to create one. The loser's create fails (NATS 2.9 answers "subjects
/// overlap with an existing stream"); it then finds the winner's stream.
pub async fn ensure_stream(
    jetstream: &jetstream::Context,
    spec: &StreamSpec,
) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: spec.name.clone(),
        subjects: vec![spec.all_subjects()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    let created = jetstream.get_or_create_stream(config).await;
    match created {
        Ok(stream) => Ok(stream),
        Err(error) => match jetstream.get_stream(&spec.name).await {
            Ok(stream) => Ok(stream),
            Err(_) => Err(error).with_context(|| format!("create stream {}", spec.name)),
        },
    }
}

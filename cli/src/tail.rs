//! `shop events tail`: every event of a stack as its relays publish it, followed live
//! on NATS through one ephemeral ordered consumer per stream.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::{self, Message};
use futures::stream::{select_all, SelectAll};
use futures::{Stream, StreamExt};
use platform::nats::StreamSpec;
use platform::relay::CORRELATION_ID_HEADER;
use platform::Envelope;

use crate::events::summarize;

/// The command services, whose streams `tail` follows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The `CUSTOMERS` stream.
    Customers,
    /// The `INVENTORY` stream: products, stock and reservations.
    Inventory,
    /// The `ORDERS` stream.
    Orders,
    /// The `PAYMENTS` stream.
    Payments,
}

impl Service {
    const ALL: [Service; 4] = [
        Service::Customers,
        Service::Inventory,
        Service::Orders,
        Service::Payments,
    ];

    /// The service's name, the first token of its subjects.
    fn name(self) -> &'static str {
        match self {
            Service::Customers => "customers",
            Service::Inventory => "inventory",
            Service::Orders => "orders",
            Service::Payments => "payments",
        }
    }
}

/// Options of `shop events tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Follow only this service's stream instead of all four.
    #[arg(long, value_enum)]
    pub service: Option<Service>,
    /// Print each event as its Envelope, one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// NATS server with JetStream enabled, as the services use it.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The stack's stream namespace, as the services use it (empty: `ORDERS` on
    /// `orders.>`; `dev`: `DEV_ORDERS` on `dev.orders.>`).
    #[arg(long, env = "STREAM_NAMESPACE", default_value = "")]
    pub stream_namespace: String,
}

/// How `tail` prints an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One readable line: time, subject, correlation id and a short payload.
    Line,
    /// The Envelope as one line of JSON.
    Json,
}

type Messages = Pin<Box<dyn Stream<Item = anyhow::Result<Message>> + Send>>;

/// Live subscriptions to some streams, delivering what is published after
/// [`Tail::start`] returned.
pub struct Tail {
    messages: SelectAll<Messages>,
}

/// Follows the stack's streams until Ctrl-C.
pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .connect(&args.nats_url)
        .await
        .with_context(|| {
            format!(
                "no NATS at {} (is `shop up` running? NATS_URL={0})",
                args.nats_url
            )
        })?;
    let jetstream = jetstream::new(client);
    let services = args.service.map_or(Service::ALL.to_vec(), |one| vec![one]);
    let streams: Vec<StreamSpec> = services
        .into_iter()
        .map(|service| StreamSpec::in_namespace(&args.stream_namespace, service.name()))
        .collect();
    let tail = Tail::start(&jetstream, &streams).await?;
    let names: Vec<&str> = streams.iter().map(|spec| spec.name.as_str()).collect();
    eprintln!("following {} from now on; Ctrl-C stops", names.join(", "));
    let format = if args.json {
        Format::Json
    } else {
        Format::Line
    };
    let stop = async {
        // Without a Ctrl-C handler the tail runs until the process is killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tail.follow(std::io::stdout().lock(), format, stop).await
}

impl Tail {
    /// Creates an ephemeral ordered consumer on each stream that delivers only what is
    /// published from now on. A missing stream is an error that names it.
    pub async fn start(
        jetstream: &jetstream::Context,
        streams: &[StreamSpec],
    ) -> anyhow::Result<Self> {
        let mut messages = Vec::with_capacity(streams.len());
        for spec in streams {
            let stream = jetstream.get_stream(&spec.name).await.with_context(|| {
                format!(
                    "no stream {} on NATS (is the stack up, with this STREAM_NAMESPACE?)",
                    spec.name
                )
            })?;
            let consumer = stream
                .create_consumer(pull::OrderedConfig {
                    deliver_policy: DeliverPolicy::New,
                    ..Default::default()
                })
                .await
                .with_context(|| format!("follow stream {}", spec.name))?;
            let name = spec.name.clone();
            let ordered = consumer
                .messages()
                .await
                .with_context(|| format!("follow stream {}", spec.name))?
                .map(move |message| message.with_context(|| format!("receive from stream {name}")));
            messages.push(Box::pin(ordered) as Messages);
        }
        Ok(Self {
            messages: select_all(messages),
        })
    }

    /// Writes one line per event to `out`, as it arrives, until `stop` completes.
    /// An error of a subscription ends it.
    pub async fn follow<W: Write>(
        mut self,
        mut out: W,
        format: Format,
        stop: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut stop = std::pin::pin!(stop);
        loop {
            let message = tokio::select! {
                () = &mut stop => return Ok(()),
                next = self.messages.next() => match next {
                    Some(message) => message?,
                    None => return Ok(()),
                },
            };
            if let Some(line) = render(&message, format) {
                out.write_all(line.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| out.flush())
                    .context("write an event")?;
            }
        }
    }
}

/// The line of one message, or `None` for a message that is no Envelope in JSON
/// format (it would not parse as one downstream).
fn render(message: &Message, format: Format) -> Option<String> {
    let envelope: Option<Envelope> = serde_json::from_slice(&message.payload).ok();
    match (format, envelope) {
        (Format::Json, Some(envelope)) => serde_json::to_string(&envelope).ok(),
        (Format::Json, None) => None,
        (Format::Line, envelope) => {
            let header = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(CORRELATION_ID_HEADER))
                .map(|value| value.as_str().to_owned());
            Some(line(&message.subject, header, envelope.as_ref(), message))
        }
    }
}

/// `time  subject  correlation=id  payload`, the payload cut short.
fn line(
    subject: &str,
    correlation_header: Option<String>,
    envelope: Option<&Envelope>,
    message: &Message,
) -> String {
    let correlation = correlation_header
        .or_else(|| envelope.and_then(|e| e.correlation_id().map(str::to_owned)))
        .unwrap_or_else(|| "-".to_owned());
    match envelope {
        Some(envelope) => format!(
            "{}  {subject}  correlation={correlation}  {}",
            envelope.recorded_at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
            summarize(&envelope.payload),
        ),
        None => {
            let raw = String::from_utf8_lossy(&message.payload);
            format!(
                "{:<24}  {subject}  correlation={correlation}  (not an envelope) {}",
                "-",
                summarize(&serde_json::Value::String(raw.into_owned())),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use async_nats::HeaderMap;
    use platform::testing::{nats_url, test_namespace};
    use tokio::sync::{mpsc, oneshot};

    use super::*;

    /// A writer that hands every complete line to a channel.
    struct Lines {
        sender: mpsc::UnboundedSender<String>,
        partial: Vec<u8>,
    }

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.partial.extend_from_slice(buf);
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]).into_owned();
                // The test may have stopped listening; the line is then not needed.
                let _ = self.sender.send(text);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn envelope(sequence: i64, event_type: &str) -> Envelope {
        serde_json::from_value(serde_json::json!({
            "event_id": format!("orders:Order:o-1:{sequence}"),
            "service": "orders",
            "aggregate_type": "Order",
            "aggregate_id": "o-1",
            "sequence": sequence,
            "global_position": sequence,
            "event_type": event_type,
            "event_version": "1.0",
            "payload": {"total_cents": 2500},
            "metadata": {"correlation_id": "req-tail", "causation_id": "req-tail"},
            "recorded_at": "2026-11-22T01:07:11.250Z",
        }))
        .expect("an Envelope")
    }

    async fn publish(jetstream: &jetstream::Context, spec: &StreamSpec, envelope: &Envelope) {
        let mut headers = HeaderMap::new();
        headers.insert(CORRELATION_ID_HEADER, "req-tail");
        jetstream
            .publish_with_headers(
                spec.subject_for(envelope),
                headers,
                serde_json::to_vec(envelope).expect("json").into(),
            )
            .await
            .expect("publish")
            .await
            .expect("publish acknowledged");
    }

    /// Starts a tail of the orders stream of a fresh namespace, after one event was
    /// already published, and returns what it prints and how to stop it.
    async fn tail_after_one_event(
        format: Format,
    ) -> (
        jetstream::Context,
        StreamSpec,
        mpsc::UnboundedReceiver<String>,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let client = async_nats::connect(nats_url()).await.expect("nats");
        let jetstream = jetstream::new(client);
        let spec = StreamSpec::in_namespace(&test_namespace(), "orders");
        platform::nats::ensure_stream(&jetstream, &spec)
            .await
            .expect("stream");
        publish(&jetstream, &spec, &envelope(1, "OrderPlaced")).await;

        let tail = Tail::start(&jetstream, std::slice::from_ref(&spec))
            .await
            .expect("tail starts");
        let (sender, lines) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let out = Lines {
            sender,
            partial: Vec::new(),
        };
        let task = tokio::spawn(tail.follow(out, format, async {
            let _ = stopped.await;
        }));
        (jetstream, spec, lines, stop, task)
    }

    async fn next_line(lines: &mut mpsc::UnboundedReceiver<String>) -> String {
        tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .expect("a line within 20 s")
            .expect("the tail is running")
    }

    #[tokio::test]
    async fn an_event_published_after_the_tail_starts_is_printed_as_one_line() {
        let (jetstream, spec, mut lines, stop, task) = tail_after_one_event(Format::Line).await;
        publish(&jetstream, &spec, &envelope(2, "OrderConfirmed")).await;

        let line = next_line(&mut lines).await;
        let subject = format!("{}.Order.o-1.OrderConfirmed", spec.subject_prefix);
        assert_eq!(
            line,
            format!("2026-11-22 01:07:11.250Z  {subject}  correlation=req-tail  total_cents=2500")
        );
        stop.send(()).expect("the tail listens for stop");
        task.await
            .expect("tail task")
            .expect("the tail stops cleanly");
        assert!(
            lines.try_recv().is_err(),
            "the event from before the start was printed"
        );
    }

    #[tokio::test]
    async fn with_json_each_event_is_its_envelope_on_one_line() {
        let (jetstream, spec, mut lines, stop, task) = tail_after_one_event(Format::Json).await;
        let confirmed = envelope(2, "OrderConfirmed");
        publish(&jetstream, &spec, &confirmed).await;

        let line = next_line(&mut lines).await;
        let printed: Envelope = serde_json::from_str(&line).expect("an Envelope");
        assert_eq!(printed, confirmed);
        stop.send(()).expect("the tail listens for stop");
        task.await
            .expect("tail task")
            .expect("the tail stops cleanly");
    }
}

//! `shop events` and `shop state`: an aggregate's history and its state after any of
//! its events, read from a running stack through its gateway. `shop events tail` and
//! `shop events trace` live in their own modules.

use std::time::Duration;

use anyhow::{bail, Context};
use platform::EventStream;
use reqwest::{StatusCode, Url};
use serde_json::Value;

/// The longest payload summary a timeline line shows before cutting it short.
const SUMMARY_WIDTH: usize = 72;

/// The kinds of aggregate whose history the command services keep.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Customers, by id (a UUID).
    Customers,
    /// Products, by sku.
    Products,
    /// Orders, by id (a UUID).
    Orders,
    /// Payments, by the id of their order.
    Payments,
}

impl Kind {
    /// The first path segment after `/api/`.
    fn segment(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Products => "products",
            Kind::Orders => "orders",
            Kind::Payments => "payments",
        }
    }

    /// One of the kind, in words: `customer`, `payment for order`.
    fn noun(self) -> &'static str {
        match self {
            Kind::Customers => "customer",
            Kind::Products => "product",
            Kind::Orders => "order",
            Kind::Payments => "payment for order",
        }
    }
}

/// Options of `shop events`: `<kind> <id>` reads one aggregate's stream, while the
/// words `tail` and `trace` in first place start those commands instead.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EventsArgs {
    /// Follow or trace events instead of reading one aggregate's stream.
    #[command(subcommand)]
    pub command: Option<EventsCommand>,
    /// Which kind of aggregate.
    #[arg(value_enum, required = true)]
    pub kind: Option<Kind>,
    /// The aggregate's id: a customer or order id, a product's sku, or for a payment
    /// the id of its order.
    #[arg(required = true)]
    pub id: Option<String>,
    /// Print the stream as the gateway answers it (JSON) instead of a timeline.
    #[arg(long)]
    pub json: bool,
    /// Start at this sequence instead of at the first event.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub from_sequence: Option<i64>,
    /// Base URL of the running stack's gateway.
    #[arg(long, env = "SHOP_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// The commands of `shop events` besides reading one aggregate's stream.
#[derive(clap::Subcommand, Debug)]
pub enum EventsCommand {
    /// Follow every event live from NATS as the services publish it, from now on.
    ///
    /// One line per event: when it was recorded, its subject, its correlation id
    /// and a short payload; `--json` prints each Envelope as one JSON line instead.
    /// `--service` follows one service's stream only. Ctrl-C stops.
    Tail(crate::tail::TailArgs),
    /// Print every event of one request across all services, in causal order
    /// (GET $SHOP_URL/api/trace/<correlation_id>).
    ///
    /// Each event comes after the event that caused it: the saga as a story, with
    /// what caused each step. `--mermaid` prints a Mermaid sequence diagram for docs
    /// and issues, `--json` the gateway's answer.
    Trace(crate::trace::TraceArgs),
}

/// Options of `shop state`.
#[derive(clap::Args, Debug)]
pub struct StateArgs {
    /// Which kind of aggregate.
    #[arg(value_enum)]
    pub kind: Kind,
    /// The aggregate's id: a customer or order id, a product's sku, or for a payment
    /// the id of its order.
    pub id: String,
    /// Show the state right after this event (time travel) instead of the current one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub version: Option<i64>,
    /// Base URL of the running stack's gateway.
    #[arg(long, env = "SHOP_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// Prints an aggregate's events as a timeline, or as JSON with `--json`; or runs
/// `tail` or `trace`.
pub async fn run_events(args: EventsArgs) -> anyhow::Result<()> {
    let (kind, id) = match (args.command, args.kind, args.id) {
        (Some(EventsCommand::Tail(tail)), _, _) => return crate::tail::run(tail).await,
        (Some(EventsCommand::Trace(trace)), _, _) => return crate::trace::run(trace).await,
        (None, Some(kind), Some(id)) => (kind, id),
        // clap requires both when no command is given.
        (None, _, _) => bail!("name a kind and an id: shop events <kind> <id>"),
    };
    let query: Vec<(&str, String)> = args
        .from_sequence
        .map(|n| ("from_sequence", n.to_string()))
        .into_iter()
        .collect();
    let what = format!("{} {id}", kind.noun());
    let body = fetch(&args.url, kind, &id, "events", &query, &what).await?;
    if args.json {
        println!("{}", pretty(&body)?);
        return Ok(());
    }
    let stream: EventStream =
        serde_json::from_value(body).context("read the gateway's event stream")?;
    println!(
        "{} {}: {} event(s)",
        stream.aggregate_type,
        stream.aggregate_id,
        stream.events.len()
    );
    for line in timeline(&stream) {
        println!("{line}");
    }
    Ok(())
}

/// Prints an aggregate's state, now or after event `--version`, as pretty JSON.
pub async fn run_state(args: StateArgs) -> anyhow::Result<()> {
    let query: Vec<(&str, String)> = args
        .version
        .map(|n| ("version", n.to_string()))
        .into_iter()
        .collect();
    let what = match args.version {
        Some(version) => format!("{} {} at version {version}", args.kind.noun(), args.id),
        None => format!("{} {}", args.kind.noun(), args.id),
    };
    let body = fetch(&args.url, args.kind, &args.id, "state", &query, &what).await?;
    println!("{}", pretty(&body)?);
    Ok(())
}

/// The answer as indented JSON.
pub fn pretty(body: &Value) -> anyhow::Result<String> {
    serde_json::to_string_pretty(body).context("format the answer as JSON")
}

/// GETs `/api/<kind>/<id>/<resource>` from the gateway at `base`, turning a 404, an
/// error answer or a stack that does not answer into an error that says what to do.
async fn fetch(
    base: &str,
    kind: Kind,
    id: &str,
    resource: &str,
    query: &[(&str, String)],
    what: &str,
) -> anyhow::Result<Value> {
    let mut url = resource_url(base, kind, id, resource)?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    get_json(base, url, what).await
}

/// GETs `url` from the stack whose gateway is at `base`; a 404 says there is no
/// `what`, and an error answer or a stack that does not answer says what to do.
pub async fn get_json(base: &str, url: Url, what: &str) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .context("build an HTTP client")?;
    let response = match client.get(url.clone()).send().await {
        Ok(response) => response,
        Err(error) => bail!(
            "no answer from the stack at {base} ({error}). Is `shop up` running? SHOP_URL={base}"
        ),
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::NOT_FOUND {
        bail!(
            "no {what} on the stack at {base} ({})",
            problem_detail(&body, status)
        );
    }
    if !status.is_success() {
        bail!("{url} answered {status}: {}", problem_detail(&body, status));
    }
    Ok(body)
}

/// The URL of one aggregate's resource; the id is percent-encoded as one segment.
fn resource_url(base: &str, kind: Kind, id: &str, resource: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(base).with_context(|| format!("SHOP_URL={base} is not a URL"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("SHOP_URL={base} cannot have a path"))?
        .pop_if_empty()
        .extend(["api", kind.segment(), id, resource]);
    Ok(url)
}

/// The `detail` of a problem+json answer, or the status when there is none.
fn problem_detail(body: &Value, status: StatusCode) -> String {
    body["detail"]
        .as_str()
        .map_or_else(|| status.to_string(), str::to_owned)
}

/// One line per event: sequence, when it was recorded, its type, a short summary of
/// its payload and its correlation id, in columns.
pub fn timeline(stream: &EventStream) -> Vec<String> {
    let type_width = stream
        .events
        .iter()
        .map(|event| event.event_type.len())
        .max()
        .unwrap_or(0);
    stream
        .events
        .iter()
        .map(|event| {
            format!(
                "#{:<4} {}  {:<type_width$}  {:<SUMMARY_WIDTH$}  correlation={}",
                event.sequence,
                event.recorded_at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
                event.event_type,
                summarize(&event.payload),
                event.correlation_id().unwrap_or("-"),
            )
        })
        .collect()
}

/// The payload's fields as `name=value`, nested values shortened, cut at
/// [`SUMMARY_WIDTH`] characters.
pub fn summarize(payload: &Value) -> String {
    let summary = match payload {
        Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| format!("{name}={}", short_value(value)))
            .collect::<Vec<_>>()
            .join(" "),
        other => short_value(other),
    };
    if summary.chars().count() <= SUMMARY_WIDTH {
        return summary;
    }
    let mut cut: String = summary.chars().take(SUMMARY_WIDTH - 1).collect();
    cut.push('…');
    cut
}

fn short_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => format!("[{} item(s)]", items.len()),
        Value::Object(_) => "{…}".to_owned(),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(events: Value) -> EventStream {
        let envelopes: Vec<Value> = events
            .as_array()
            .expect("events")
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let sequence = index as i64 + 1;
                serde_json::json!({
                    "event_id": format!("orders:Order:o-1:{sequence}"),
                    "service": "orders",
                    "aggregate_type": "Order",
                    "aggregate_id": "o-1",
                    "sequence": sequence,
                    "global_position": 40 + sequence,
                    "event_type": event["type"],
                    "event_version": "1.0",
                    "payload": event["payload"],
                    "metadata": {"correlation_id": "req-7", "causation_id": "req-7"},
                    "recorded_at": format!("2026-11-22T01:07:1{sequence}.250Z"),
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "aggregate_type": "Order",
            "aggregate_id": "o-1",
            "events": envelopes,
        }))
        .expect("an EventStream")
    }

    #[test]
    fn each_event_is_one_line_with_sequence_time_type_summary_and_correlation() {
        let lines = timeline(&stream(serde_json::json!([
            {"type": "OrderPlaced", "payload": {"customer_id": "c-1", "lines": [{"sku": "MUG"}, {"sku": "CAP"}]}},
            {"type": "OrderConfirmed", "payload": {"total_cents": 2500}},
        ])));
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with(
                "#1    2026-11-22 01:07:11.250Z  OrderPlaced     customer_id=c-1 lines=[2 item(s)]"
            ),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with("correlation=req-7"), "{}", lines[0]);
        assert!(
            lines[1]
                .starts_with("#2    2026-11-22 01:07:12.250Z  OrderConfirmed  total_cents=2500"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn the_columns_line_up_whatever_the_event_type() {
        let lines = timeline(&stream(serde_json::json!([
            {"type": "A", "payload": {"x": 1}},
            {"type": "MuchLongerName", "payload": {"reason": null}},
        ])));
        let column = |line: &str| line.find("correlation=").expect("correlation column");
        assert_eq!(column(&lines[0]), column(&lines[1]));
        assert!(lines[1].contains("reason=null"), "{}", lines[1]);
    }

    #[test]
    fn a_long_payload_is_cut_short() {
        let summary =
            summarize(&serde_json::json!({"reason": "x".repeat(200), "nested": {"a": 1}}));
        assert_eq!(summary.chars().count(), SUMMARY_WIDTH);
        assert!(summary.ends_with('…'));
        assert_eq!(
            summarize(&serde_json::json!({"nested": {"a": 1}})),
            "nested={…}"
        );
    }

    #[test]
    fn an_empty_stream_has_no_lines() {
        assert!(timeline(&stream(serde_json::json!([]))).is_empty());
    }

    #[test]
    fn ids_are_one_encoded_path_segment() {
        let url =
            resource_url("http://127.0.0.1:8080/", Kind::Products, "A/B C", "state").expect("url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/api/products/A%2FB%20C/state"
        );
    }

    /// `shop events …` as the real command line parses it.
    #[derive(clap::Parser, Debug)]
    struct Shop {
        #[command(subcommand)]
        command: ShopCommand,
    }

    #[derive(clap::Subcommand, Debug)]
    enum ShopCommand {
        Events(EventsArgs),
    }

    fn parse(args: &[&str]) -> Result<EventsArgs, clap::Error> {
        use clap::Parser as _;
        let ShopCommand::Events(events) =
            Shop::try_parse_from(["shop", "events"].iter().chain(args))?.command;
        Ok(events)
    }

    #[test]
    fn a_kind_and_an_id_still_read_one_aggregate() {
        let args = parse(&["orders", "o-1", "--json", "--from-sequence", "2"]).expect("parses");
        assert!(args.command.is_none());
        assert_eq!(args.kind, Some(Kind::Orders));
        assert_eq!(args.id.as_deref(), Some("o-1"));
        assert!(args.json);
        assert_eq!(args.from_sequence, Some(2));
    }

    #[test]
    fn tail_and_trace_are_commands_of_their_own() {
        let args = parse(&["tail", "--service", "inventory", "--json"]).expect("parses");
        let Some(EventsCommand::Tail(tail)) = args.command else {
            panic!("not tail: {args:?}");
        };
        assert_eq!(tail.service, Some(crate::tail::Service::Inventory));
        assert!(tail.json);

        let args = parse(&["trace", "req-7", "--mermaid"]).expect("parses");
        let Some(EventsCommand::Trace(trace)) = args.command else {
            panic!("not trace: {args:?}");
        };
        assert_eq!(trace.correlation_id, "req-7");
        assert!(trace.mermaid && !trace.json);
    }

    #[test]
    fn a_kind_without_an_id_or_an_unknown_kind_is_refused() {
        assert!(parse(&["orders"]).is_err());
        assert!(parse(&["shipments", "s-1"]).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&["trace", "req-7", "--json", "--mermaid"]).is_err());
    }

    #[tokio::test]
    async fn a_stack_that_does_not_answer_is_told_to_start_with_shop_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        drop(listener);
        let error = fetch(&base, Kind::Orders, "o-1", "events", &[], "order o-1")
            .await
            .expect_err("nothing listens");
        let message = error.to_string();
        assert!(message.contains("Is `shop up` running?"), "{message}");
        assert!(message.contains(&format!("SHOP_URL={base}")), "{message}");
    }
}

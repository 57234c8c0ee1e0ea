//! `shop events trace`: every event of one request across the services, in causal
//! order (GET $SHOP_URL/api/trace/<correlation_id>), as a story or a Mermaid diagram.

use anyhow::Context;
use platform::envelope::CAUSATION_ID;
use platform::trace::Trace;
use platform::Envelope;
use reqwest::Url;

use crate::events::{get_json, pretty, summarize};

/// The participant of a Mermaid diagram, and the cause in a story, for an event
/// caused by a request rather than by another event.
const CLIENT: &str = "client";

/// Options of `shop events trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The request's id: the `X-Request-Id` it was sent or answered with, which every
    /// event it caused carries as its correlation id.
    pub correlation_id: String,
    /// Print the trace as the gateway answers it (JSON).
    #[arg(long, conflicts_with = "mermaid")]
    pub json: bool,
    /// Print a Mermaid sequence diagram (for docs and issues) instead of the story.
    #[arg(long)]
    pub mermaid: bool,
    /// Base URL of the running stack's gateway.
    #[arg(long, env = "SHOP_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// Prints the events of one request: a story, JSON or a Mermaid diagram.
pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let mut url =
        Url::parse(&args.url).with_context(|| format!("SHOP_URL={} is not a URL", args.url))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("SHOP_URL={} cannot have a path", args.url))?
        .pop_if_empty()
        .extend(["api", "trace", &args.correlation_id]);
    let what = format!("event with correlation id {}", args.correlation_id);
    let body = get_json(&args.url, url, &what).await?;
    if args.json {
        println!("{}", pretty(&body)?);
        return Ok(());
    }
    let trace: Trace = serde_json::from_value(body).context("read the gateway's trace")?;
    let lines = if args.mermaid {
        mermaid(&trace)
    } else {
        story(&trace)
    };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// The event of the trace that caused `event`, with its index; `None` when a
/// request caused it.
fn cause_of<'a>(trace: &'a Trace, event: &Envelope) -> Option<(usize, &'a Envelope)> {
    let cause = event.metadata.get(CAUSATION_ID)?;
    trace
        .events
        .iter()
        .enumerate()
        .find(|(_, candidate)| &candidate.event_id == cause)
}

/// A heading, then one line per event: its step, time, service, aggregate, type,
/// what caused it (the client or an earlier step) and a short payload.
pub fn story(trace: &Trace) -> Vec<String> {
    let width = |column: fn(&Envelope) -> String| {
        trace
            .events
            .iter()
            .map(|event| column(event).chars().count())
            .max()
            .unwrap_or(0)
    };
    let service_width = width(|e| e.service.clone());
    let aggregate_width = width(aggregate);
    let type_width = width(|e| e.event_type.clone());
    let mut lines = vec![format!(
        "trace {}: {} event(s)",
        trace.correlation_id,
        trace.events.len()
    )];
    for (step, event) in trace.events.iter().enumerate() {
        let cause = match cause_of(trace, event) {
            Some((index, cause)) => format!("{} {}", index + 1, cause.event_type),
            None => CLIENT.to_owned(),
        };
        let line = format!(
            "{:>3}  {}  {:<service_width$}  {:<aggregate_width$}  {:<type_width$}  <- {cause}  {}",
            step + 1,
            event.recorded_at.format("%H:%M:%S%.3f"),
            event.service,
            aggregate(event),
            event.event_type,
            summarize(&event.payload),
        );
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// `Order 0190…#3`: the aggregate and the event's sequence in it.
fn aggregate(event: &Envelope) -> String {
    format!(
        "{} {}#{}",
        event.aggregate_type, event.aggregate_id, event.sequence
    )
}

/// A Mermaid `sequenceDiagram`: the client and each service in order of
/// appearance, and for each event an arrow from whoever caused it to the service
/// that recorded it, labelled with the event type and its aggregate.
pub fn mermaid(trace: &Trace) -> Vec<String> {
    let mut participants = vec![CLIENT];
    for event in &trace.events {
        if !participants.contains(&event.service.as_str()) {
            participants.push(&event.service);
        }
    }
    let mut lines = vec!["sequenceDiagram".to_owned()];
    lines.extend(
        participants
            .iter()
            .map(|name| format!("    participant {}", mermaid_text(name))),
    );
    for event in &trace.events {
        let from = cause_of(trace, event).map_or(CLIENT, |(_, cause)| cause.service.as_str());
        lines.push(format!(
            "    {}->>{}: {}",
            mermaid_text(from),
            mermaid_text(&event.service),
            mermaid_text(&format!(
                "{} {} {}",
                event.event_type, event.aggregate_type, event.aggregate_id
            )),
        ));
    }
    lines
}

/// Text that Mermaid shows as it is: `;` would end the statement, `#` start an
/// entity code, and a line break end the line.
fn mermaid_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ';' | '#' | ':' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trace of one confirmed order with one line, as the gateway orders it.
    fn confirmed_order() -> Trace {
        let event = |id: &str,
                     service: &str,
                     aggregate: (&str, &str, i64),
                     event_type: &str,
                     cause: &str,
                     payload: serde_json::Value,
                     at: &str| {
            serde_json::json!({
                "event_id": id, "service": service,
                "aggregate_type": aggregate.0, "aggregate_id": aggregate.1, "sequence": aggregate.2,
                "global_position": aggregate.2, "event_type": event_type, "event_version": "1.0",
                "payload": payload,
                "metadata": {"correlation_id": "req-1", "causation_id": cause},
                "recorded_at": format!("2026-11-22T01:07:{at}Z"),
            })
        };
        let order = "orders:Order:o-1";
        serde_json::from_value(serde_json::json!({
            "correlation_id": "req-1",
            "events": [
                event(&format!("{order}:1"), "orders", ("Order", "o-1", 1), "OrderPlaced", "req-1",
                      serde_json::json!({"customer_id": "c-1", "lines": [{"sku": "MUG"}]}), "11.100"),
                event("inventory:Product:MUG:2", "inventory", ("Product", "MUG", 2), "StockReserved",
                      &format!("{order}:1"), serde_json::json!({"quantity": 2}), "11.200"),
                event(&format!("{order}:2"), "orders", ("Order", "o-1", 2), "OrderLineReserved",
                      "inventory:Product:MUG:2", serde_json::json!({"sku": "MUG"}), "11.300"),
                event(&format!("{order}:3"), "orders", ("Order", "o-1", 3), "OrderStockReserved",
                      "inventory:Product:MUG:2", serde_json::json!({"total_cents": 2500}), "11.300"),
                event("payments:Payment:o-1:1", "payments", ("Payment", "o-1", 1), "PaymentAuthorized",
                      &format!("{order}:3"), serde_json::json!({"amount_cents": 2500}), "11.400"),
                event(&format!("{order}:4"), "orders", ("Order", "o-1", 4), "OrderConfirmed",
                      "payments:Payment:o-1:1", serde_json::json!({}), "11.500"),
            ],
        }))
        .expect("a Trace")
    }

    #[test]
    fn the_mermaid_diagram_draws_an_arrow_from_each_cause_to_each_recorder() {
        assert_eq!(
            mermaid(&confirmed_order()),
            [
                "sequenceDiagram",
                "    participant client",
                "    participant orders",
                "    participant inventory",
                "    participant payments",
                "    client->>orders: OrderPlaced Order o-1",
                "    orders->>inventory: StockReserved Product MUG",
                "    inventory->>orders: OrderLineReserved Order o-1",
                "    inventory->>orders: OrderStockReserved Order o-1",
                "    orders->>payments: PaymentAuthorized Payment o-1",
                "    payments->>orders: OrderConfirmed Order o-1",
            ]
        );
    }

    #[test]
    fn mermaid_labels_cannot_break_the_diagram() {
        assert_eq!(mermaid_text("a;b#c:d\ne"), "a_b_c_d e");
    }

    #[test]
    fn the_story_tells_each_step_with_its_cause() {
        let lines = story(&confirmed_order());
        assert_eq!(
            lines,
            [
                "trace req-1: 6 event(s)",
                "  1  01:07:11.100  orders     Order o-1#1    OrderPlaced         <- client  customer_id=c-1 lines=[1 item(s)]",
                "  2  01:07:11.200  inventory  Product MUG#2  StockReserved       <- 1 OrderPlaced  quantity=2",
                "  3  01:07:11.300  orders     Order o-1#2    OrderLineReserved   <- 2 StockReserved  sku=MUG",
                "  4  01:07:11.300  orders     Order o-1#3    OrderStockReserved  <- 2 StockReserved  total_cents=2500",
                "  5  01:07:11.400  payments   Payment o-1#1  PaymentAuthorized   <- 4 OrderStockReserved  amount_cents=2500",
                "  6  01:07:11.500  orders     Order o-1#4    OrderConfirmed      <- 5 PaymentAuthorized",
            ]
        );
    }
}

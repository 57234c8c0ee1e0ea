//! Inventory's part in the order saga: it reserves an order's lines when the order
//! is placed, releases them when it is rejected or cancelled, and commits them when
//! it ships.
//!
//! Commands run through the product event store, each in its own transaction, so
//! a batch that is rolled back and redelivered runs them again. That is safe
//! because the Product aggregate answers each order once: a second reservation,
//! release or commit for the same order records nothing.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use domain::inventory::{Product, ProductCommand, ProductError, ReservationStatus};
use domain::orders::{OrderEvent, PlacedLine};
use domain::values::Quantity;
use platform::consumer::Handler;
use platform::event_store::{AggregateStore, CommandContext, CommandError};
use platform::Envelope;
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

/// The JetStream durable name of the saga consumer, also the key of its
/// checkpoints and offsets.
pub const SAGA_DURABLE_NAME: &str = "inventory-saga";

/// The order events inventory acts on. Others are skipped before decoding, so an
/// event type added to orders later cannot stall this consumer. `docs/events.md`
/// lists them.
pub const SAGA_REACTS_TO: [&str; 4] = [
    "OrderPlaced",
    "OrderRejected",
    "OrderCancelled",
    "OrderShipped",
];

/// Turns order events into product commands.
pub struct OrderReactions {
    products: Arc<AggregateStore<Product>>,
}

impl OrderReactions {
    /// Reactions that run their commands through `products`.
    pub fn new(products: Arc<AggregateStore<Product>>) -> Self {
        Self { products }
    }
}

#[async_trait]
impl Handler for OrderReactions {
    fn name(&self) -> &str {
        SAGA_DURABLE_NAME
    }

    async fn apply(&self, tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        self.apply_all(tx, &[envelope]).await
    }

    /// Runs the batch's commands first and records the placed orders' lines
    /// last. The batch's transaction then takes its id only at the end, and the
    /// events the commands append are not held back behind it meanwhile: the
    /// relays wait for the oldest running transaction id in the cluster.
    async fn apply_all(&self, tx: &mut PgConnection, events: &[&Envelope]) -> anyhow::Result<()> {
        let mut placed = PlacedLines::default();
        for envelope in events {
            let span = tracing::info_span!(
                "event",
                event_id = %envelope.event_id,
                correlation_id = envelope.correlation_id().unwrap_or(""),
            );
            self.react(tx, envelope, &mut placed)
                .instrument(span)
                .await
                .with_context(|| format!("react to {}", envelope.event_id))?;
        }
        placed.record(tx).await
    }
}

/// The lines of the orders placed in a batch, recorded when the batch ends.
#[derive(Default)]
struct PlacedLines(Vec<(Uuid, Vec<PlacedLine>)>);

impl PlacedLines {
    /// The skus of an order placed in this batch.
    fn skus(&self, order_id: Uuid) -> impl Iterator<Item = String> + '_ {
        self.0
            .iter()
            .filter(move |(placed, _)| *placed == order_id)
            .flat_map(|(_, lines)| lines.iter().map(|line| line.sku.clone()))
    }

    /// Stores every order's lines in the batch's transaction; a redelivery adds
    /// nothing.
    async fn record(self, tx: &mut PgConnection) -> anyhow::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let (mut orders, mut skus, mut quantities) = (vec![], vec![], vec![]);
        for (order_id, lines) in &self.0 {
            for line in lines {
                orders.push(*order_id);
                skus.push(line.sku.as_str());
                quantities.push(
                    i64::try_from(line.quantity)
                        .context("a line quantity does not fit in bigint")?,
                );
            }
        }
        sqlx::query(
            "INSERT INTO order_lines (order_id, sku, quantity)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[])
             ON CONFLICT (order_id, sku) DO NOTHING",
        )
        .bind(&orders)
        .bind(&skus)
        .bind(&quantities)
        .execute(tx)
        .await
        .context("record the lines of the batch's orders")?;
        Ok(())
    }
}

impl OrderReactions {
    /// Runs the commands one order event calls for.
    async fn react(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        placed: &mut PlacedLines,
    ) -> anyhow::Result<()> {
        let Some((order_id, event)) = order_event(envelope) else {
            return Ok(());
        };
        let context = command_context(envelope);
        match event {
            OrderEvent::OrderPlaced { lines, .. } => {
                self.reserve_lines(order_id, &lines, &context).await?;
                placed.0.push((order_id, lines));
                Ok(())
            }
            OrderEvent::OrderRejected { .. } | OrderEvent::OrderCancelled { .. } => {
                let command = ProductCommand::ReleaseReservation { order_id };
                self.on_every_line(tx, placed, order_id, command, &context)
                    .await
            }
            OrderEvent::OrderShipped {} => {
                let command = ProductCommand::CommitReservation { order_id };
                self.on_every_line(tx, placed, order_id, command, &context)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Reserves the order's lines one by one and stops at the first refusal: the
    /// order is then rejected, and that releases every line.
    async fn reserve_lines(
        &self,
        order_id: Uuid,
        lines: &[PlacedLine],
        context: &CommandContext,
    ) -> anyhow::Result<()> {
        let Some(quantities) = line_quantities(lines) else {
            // Orders validates quantities when the order is placed, so this is a
            // broken contract that no retry can mend.
            tracing::error!(%order_id, "an order line's quantity is out of range; order skipped");
            return Ok(());
        };
        for (line, quantity) in lines.iter().zip(quantities) {
            if self.reserve(&line.sku, order_id, quantity, context).await? {
                // The order will be rejected for this line, and the rejection releases
                // what is held; reserving later lines would only hold them meanwhile.
                tracing::info!(%order_id, sku = %line.sku, "stock refused; later lines left alone");
                break;
            }
        }
        Ok(())
    }

    /// Reserves one line, and tells whether the product refused it by an event
    /// (too little stock, or no such product).
    async fn reserve(
        &self,
        sku: &str,
        order_id: Uuid,
        quantity: Quantity,
        context: &CommandContext,
    ) -> anyhow::Result<bool> {
        let command = ProductCommand::ReserveStock { order_id, quantity };
        let refused = |product: &Product| {
            product
                .reservation(order_id)
                .is_some_and(|reservation| reservation.status == ReservationStatus::Rejected)
        };
        let executed = self
            .products
            .execute_and_inspect(sku, command, context, refused)
            .await;
        match executed {
            Ok((_, refused)) => Ok(refused),
            Err(error) => skip_refusal(sku, "ReserveStock", error).map(|()| false),
        }
    }

    /// Runs `command` on the product of every line of the order: recorded, or
    /// placed earlier in this batch.
    async fn on_every_line(
        &self,
        tx: &mut PgConnection,
        placed: &PlacedLines,
        order_id: Uuid,
        command: ProductCommand,
        context: &CommandContext,
    ) -> anyhow::Result<()> {
        let mut skus = recorded_skus(tx, order_id).await?;
        skus.extend(placed.skus(order_id));
        if skus.is_empty() {
            tracing::warn!(%order_id, "no recorded lines for this order; nothing to do");
        }
        for sku in skus {
            self.execute(&sku, command.clone(), context).await?;
        }
        Ok(())
    }

    /// Runs one command on a product.
    async fn execute(
        &self,
        sku: &str,
        command: ProductCommand,
        context: &CommandContext,
    ) -> anyhow::Result<()> {
        let name = command_name(&command);
        match self.products.execute(sku, command, context).await {
            Ok(_) => Ok(()),
            Err(error) => skip_refusal(sku, name, error),
        }
    }
}

/// A refusal cannot turn into success on a retry, so it is logged and skipped; a
/// store failure or a conflict that outlasted the store's own retries fails the
/// batch, which is then retried.
fn skip_refusal(sku: &str, name: &str, error: CommandError<ProductError>) -> anyhow::Result<()> {
    match error {
        CommandError::Rejected(refusal) => {
            tracing::warn!(sku, command = name, %refusal, "product refused; skipped");
            Ok(())
        }
        error => Err(anyhow::Error::new(error)).with_context(|| format!("{name} on {sku}")),
    }
}

/// The order id and event of an envelope this handler acts on. A malformed one is
/// logged and skipped: retrying cannot mend it, and stalling would hold up every
/// order behind it.
fn order_event(envelope: &Envelope) -> Option<(Uuid, OrderEvent)> {
    if !SAGA_REACTS_TO.contains(&envelope.event_type.as_str()) {
        return None;
    }
    let decoded = Uuid::parse_str(&envelope.aggregate_id)
        .context("the aggregate id is no order id")
        .and_then(|order_id| Ok((order_id, envelope.decode()?)));
    match decoded {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            let error = format!("{error:#}");
            tracing::error!(event_id = %envelope.event_id, error, "malformed order event skipped");
            None
        }
    }
}

/// The context of the saga's commands: the chain's correlation id (the event's
/// own id when it carries none), caused by this event.
fn command_context(envelope: &Envelope) -> CommandContext {
    let correlation_id = envelope
        .correlation_id()
        .filter(|id| !id.is_empty())
        .unwrap_or(&envelope.event_id);
    CommandContext {
        correlation_id: correlation_id.to_owned(),
        causation_id: envelope.event_id.clone(),
        expected_version: None,
    }
}

/// Every line's quantity as a `Quantity`, or `None` if one is out of range.
fn line_quantities(lines: &[PlacedLine]) -> Option<Vec<Quantity>> {
    lines
        .iter()
        .map(|line| {
            i64::try_from(line.quantity)
                .ok()
                .and_then(|units| Quantity::parse(units).ok())
        })
        .collect()
}

/// The skus of the order's recorded lines.
async fn recorded_skus(tx: &mut PgConnection, order_id: Uuid) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT sku FROM order_lines WHERE order_id = $1 ORDER BY sku")
        .bind(order_id)
        .fetch_all(tx)
        .await
        .with_context(|| format!("read the lines of order {order_id}"))
}

fn command_name(command: &ProductCommand) -> &'static str {
    match command {
        ProductCommand::AddProduct { .. } => "AddProduct",
        ProductCommand::Restock { .. } => "Restock",
        ProductCommand::ChangePrice { .. } => "ChangePrice",
        ProductCommand::ReserveStock { .. } => "ReserveStock",
        ProductCommand::ReleaseReservation { .. } => "ReleaseReservation",
        ProductCommand::CommitReservation { .. } => "CommitReservation",
    }
}

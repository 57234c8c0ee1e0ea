//! The order aggregate: its state, the decisions in `handle` and how events change it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    CompensationStep, OrderCommand, OrderError, OrderEvent, OrderRejectionReason, OrderStatus,
    PlacedLine,
};
use crate::values::{Money, OrderLines, Sku};

/// One order's lines, prices and status, rebuilt from its events. The aggregate id is
/// the order id as a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    order_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    status: Option<OrderStatus>,
    lines: Vec<OrderedLine>,
    total: Option<Money>,
    reason: Option<OrderRejectionReason>,
    cancel_reason: Option<String>,
    #[serde(default)]
    compensation_failures: Vec<CompensationFailure>,
}

/// A compensation another service refused for the order, waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationFailure {
    /// The step that could not be applied.
    pub step: CompensationStep,
    /// What the refusing service said.
    pub error: String,
}

/// One line of an order, with the unit price inventory reserved it at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderedLine {
    /// The product's SKU.
    pub sku: String,
    /// Units ordered.
    pub quantity: u64,
    /// The unit price, or `None` until inventory holds the units.
    pub unit_price: Option<Money>,
}

impl Order {
    /// Whether the order has been placed.
    pub fn exists(&self) -> bool {
        self.status.is_some()
    }

    /// The order's id, or `None` before it is placed.
    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }

    /// The customer who ordered, or `None` before the order is placed.
    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    /// Where the order stands, or `None` before it is placed.
    pub fn status(&self) -> Option<OrderStatus> {
        self.status
    }

    /// The lines in the customer's order, each with its unit price once reserved.
    pub fn lines(&self) -> &[OrderedLine] {
        &self.lines
    }

    /// The sum of quantity times unit price, or `None` until every line is reserved.
    pub fn total(&self) -> Option<Money> {
        self.total
    }

    /// Why the order was rejected, if it was.
    pub fn reason(&self) -> Option<OrderRejectionReason> {
        self.reason
    }

    /// The customer's words when cancelling, if any.
    pub fn cancel_reason(&self) -> Option<&str> {
        self.cancel_reason.as_deref()
    }

    /// The compensations other services refused for this order, oldest first; an
    /// order with any needs an operator.
    pub fn compensation_failures(&self) -> &[CompensationFailure] {
        &self.compensation_failures
    }

    /// Whether inventory holds the units of every line.
    pub fn is_stock_reserved(&self) -> bool {
        !self.lines.is_empty() && self.lines.iter().all(|line| line.unit_price.is_some())
    }

    /// Decides what a command records, without changing the state.
    fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        let (Some(status), Some(customer_id)) = (self.status, self.customer_id) else {
            return match command {
                OrderCommand::PlaceOrder {
                    order_id,
                    customer_id,
                    lines,
                } => Ok(vec![place_order(order_id, customer_id, lines)]),
                _ => Err(OrderError::NotFound),
            };
        };
        // Saga answers arrive at least once and in any order relative to the user's
        // commands, so each one only acts while it can still matter.
        match command {
            OrderCommand::PlaceOrder { .. } => Err(OrderError::AlreadyPlaced),
            OrderCommand::RecordStockReserved {
                sku,
                quantity,
                unit_price_cents,
            } if status == OrderStatus::Pending => {
                self.record_stock_reserved(customer_id, sku, quantity, unit_price_cents)
            }
            OrderCommand::RecordStockRejected { sku, reason }
                if status == OrderStatus::Pending
                    && !self.is_stock_reserved()
                    && self.line_index(&sku).is_some() =>
            {
                Ok(vec![OrderEvent::OrderRejected { reason }])
            }
            OrderCommand::RecordPaymentAuthorized { amount_cents }
                if status == OrderStatus::Pending =>
            {
                self.record_payment_authorized(amount_cents)
            }
            OrderCommand::RecordPaymentDeclined { reason } if status == OrderStatus::Pending => {
                Ok(vec![OrderEvent::OrderRejected { reason }])
            }
            OrderCommand::RecordStockReserved { .. }
            | OrderCommand::RecordStockRejected { .. }
            | OrderCommand::RecordPaymentAuthorized { .. }
            | OrderCommand::RecordPaymentDeclined { .. } => Ok(vec![]),
            OrderCommand::Cancel { reason } => cancel(status, reason).map(|event| vec![event]),
            OrderCommand::Ship => ship(status).map(|event| vec![event]),
            OrderCommand::RecordCompensationFailed { step, error } => {
                Ok(self.record_compensation_failed(step, error))
            }
        }
    }

    fn record_stock_reserved(
        &self,
        customer_id: Uuid,
        sku: Sku,
        quantity: u64,
        unit_price_cents: i64,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        // An SKU the order lacks, or a line already held, is a redelivery or a stray.
        let Some(index) = self.line_index(&sku) else {
            return Ok(vec![]);
        };
        let line = &self.lines[index];
        if line.unit_price.is_some() {
            return Ok(vec![]);
        }
        if quantity != line.quantity {
            return Err(OrderError::QuantityMismatch {
                sku,
                ordered: line.quantity,
                reserved: quantity,
            });
        }
        let unit_price = Money::from_cents(unit_price_cents)
            .map_err(|_| OrderError::NegativeUnitPrice { sku: sku.clone() })?;
        let mut events = vec![OrderEvent::OrderLineReserved {
            sku: sku.into(),
            quantity,
            unit_price_cents,
        }];
        let priced = self.lines.iter().enumerate().map(|(i, line)| {
            let unit_price = if i == index {
                Some(unit_price)
            } else {
                line.unit_price
            };
            unit_price.map(|price| (price, line.quantity))
        });
        if let Some(priced) = priced.collect::<Option<Vec<_>>>() {
            let total = total_of(&priced).ok_or(OrderError::TotalOverflow)?;
            events.push(OrderEvent::OrderStockReserved {
                customer_id,
                total_cents: total.cents(),
            });
        }
        Ok(events)
    }

    fn record_payment_authorized(&self, amount_cents: i64) -> Result<Vec<OrderEvent>, OrderError> {
        // Payments only authorizes after `OrderStockReserved`, so without a total the
        // answer has nothing to confirm.
        let Some(total) = self.total else {
            return Ok(vec![]);
        };
        if total.cents() != amount_cents {
            return Err(OrderError::PaymentAmountMismatch {
                total_cents: total.cents(),
                amount_cents,
            });
        }
        Ok(vec![OrderEvent::OrderConfirmed {
            total_cents: total.cents(),
        }])
    }

    fn record_compensation_failed(&self, step: CompensationStep, error: String) -> Vec<OrderEvent> {
        // The refusal is redelivered at least once; the order needs to say it once.
        let failure = CompensationFailure { step, error };
        if self.compensation_failures.contains(&failure) {
            return vec![];
        }
        let CompensationFailure { step, error } = failure;
        vec![OrderEvent::CompensationFailed { step, error }]
    }

    fn line_index(&self, sku: &Sku) -> Option<usize> {
        self.lines.iter().position(|line| line.sku == sku.as_str())
    }
}

fn place_order(order_id: Uuid, customer_id: Uuid, lines: OrderLines) -> OrderEvent {
    let lines = lines
        .iter()
        .map(|line| PlacedLine {
            sku: line.sku.as_str().to_owned(),
            quantity: u64::from(line.quantity.get()),
        })
        .collect();
    OrderEvent::OrderPlaced {
        order_id,
        customer_id,
        lines,
    }
}

fn cancel(status: OrderStatus, reason: Option<String>) -> Result<OrderEvent, OrderError> {
    match status {
        OrderStatus::Pending | OrderStatus::Confirmed => Ok(OrderEvent::OrderCancelled {
            reason,
            cancelled_from: status,
        }),
        _ => Err(OrderError::CannotCancel { status }),
    }
}

fn ship(status: OrderStatus) -> Result<OrderEvent, OrderError> {
    match status {
        OrderStatus::Confirmed => Ok(OrderEvent::OrderShipped {}),
        _ => Err(OrderError::CannotShip { status }),
    }
}

/// The sum of unit price times quantity, or `None` if it overflows.
fn total_of(priced: &[(Money, u64)]) -> Option<Money> {
    priced
        .iter()
        .try_fold(Money::ZERO, |total, (price, quantity)| {
            let quantity = u32::try_from(*quantity).ok()?;
            total.checked_add(price.checked_mul(quantity)?)
        })
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    // Amounts are recorded only from a valid `Money`, so a negative one cannot come from
    // `handle`; leaving the value unset beats a panic while replaying.
    fn apply(&mut self, event: Self::Event) {
        match event {
            OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                lines,
            } => {
                self.order_id = Some(order_id);
                self.customer_id = Some(customer_id);
                self.status = Some(OrderStatus::Pending);
                self.lines = lines
                    .into_iter()
                    .map(|line| OrderedLine {
                        sku: line.sku,
                        quantity: line.quantity,
                        unit_price: None,
                    })
                    .collect();
            }
            OrderEvent::OrderLineReserved {
                sku,
                unit_price_cents,
                ..
            } => {
                if let Some(line) = self.lines.iter_mut().find(|line| line.sku == sku) {
                    line.unit_price = Money::from_cents(unit_price_cents).ok();
                }
            }
            OrderEvent::OrderStockReserved { total_cents, .. } => {
                self.total = Money::from_cents(total_cents).ok();
            }
            OrderEvent::OrderRejected { reason } => {
                self.status = Some(OrderStatus::Rejected);
                self.reason = Some(reason);
            }
            OrderEvent::OrderConfirmed { .. } => self.status = Some(OrderStatus::Confirmed),
            OrderEvent::OrderCancelled { reason, .. } => {
                self.status = Some(OrderStatus::Cancelled);
                self.cancel_reason = reason;
            }
            OrderEvent::OrderShipped {} => self.status = Some(OrderStatus::Shipped),
            OrderEvent::CompensationFailed { step, error } => self
                .compensation_failures
                .push(CompensationFailure { step, error }),
        }
    }
}

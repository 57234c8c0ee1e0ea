//! The product aggregate: its state, the decisions in `handle` and how events change it.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ProductCommand, ProductError, ProductEvent, RejectionReason};
use crate::values::{Money, ProductName, Quantity, Sku};

/// One SKU's stock, price and reservations, rebuilt from its events. The aggregate id
/// is the SKU string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    sku: String,
    name: String,
    price: Money,
    on_hand: u64,
    reserved: u64,
    reservations: BTreeMap<Uuid, Reservation>,
    /// Orders whose release was refused, so the refusal is recorded once.
    #[serde(default)]
    refused_releases: BTreeSet<Uuid>,
}

/// Units asked for by one order and what became of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Units the order asked for.
    pub quantity: u64,
    /// Where the reservation stands.
    pub status: ReservationStatus,
}

/// Where an order's reservation stands. Only `Reserved` units count as reserved stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReservationStatus {
    /// The units are held for the order.
    Reserved,
    /// Too few units were available; nothing is held.
    Rejected,
    /// The units were held and then given back.
    Released,
    /// The units were held and then shipped.
    Committed,
}

impl Product {
    /// Most units `AddProduct` may start with.
    pub const MAX_INITIAL_STOCK: u32 = 1_000_000;
    /// Most units a product may have on hand.
    pub const MAX_ON_HAND: u64 = 1_000_000_000;

    /// Whether the product has been added.
    pub fn exists(&self) -> bool {
        !self.sku.is_empty()
    }

    /// The SKU, or `""` before the product is added.
    pub fn sku(&self) -> &str {
        &self.sku
    }

    /// The display name, or `""` before the product is added.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current unit price.
    pub fn price(&self) -> Money {
        self.price
    }

    /// Units in the warehouse, including those held for orders.
    pub fn on_hand(&self) -> u64 {
        self.on_hand
    }

    /// Units held for orders and not yet shipped or released.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Units that a new order may still reserve.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }

    /// The reservation record of `order_id`, whatever its status.
    pub fn reservation(&self, order_id: Uuid) -> Option<&Reservation> {
        self.reservations.get(&order_id)
    }

    /// Decides what a command records, without changing the state.
    fn decide(&self, command: ProductCommand) -> Result<Option<ProductEvent>, ProductError> {
        match command {
            ProductCommand::AddProduct {
                sku,
                name,
                price,
                initial_stock,
            } => self.add_product(&sku, name, price, initial_stock).map(Some),
            // The saga reserves stock for whatever SKU an order names, so a missing
            // product must answer with an event the order can react to.
            ProductCommand::ReserveStock { order_id, quantity } => {
                Ok(self.reserve_stock(order_id, quantity))
            }
            ProductCommand::ReleaseReservation { order_id } => {
                Ok(self.release_reservation(order_id))
            }
            // A product that was never added held nothing, so there is nothing to ship.
            ProductCommand::CommitReservation { .. } if !self.exists() => Ok(None),
            _ if !self.exists() => Err(ProductError::NotFound),
            ProductCommand::Restock { quantity } => self.restock(quantity).map(Some),
            ProductCommand::ChangePrice { price } => self.change_price(price),
            ProductCommand::CommitReservation { order_id } => self.commit_reservation(order_id),
        }
    }

    fn add_product(
        &self,
        sku: &Sku,
        name: ProductName,
        price: Money,
        initial_stock: u32,
    ) -> Result<ProductEvent, ProductError> {
        if self.exists() {
            return Err(ProductError::AlreadyExists);
        }
        if !price.is_positive() {
            return Err(ProductError::PriceMustBePositive);
        }
        if initial_stock > Self::MAX_INITIAL_STOCK {
            return Err(ProductError::StockLimitExceeded);
        }
        Ok(ProductEvent::ProductAdded {
            sku: sku.as_str().to_owned(),
            name: name.into(),
            price_cents: price.cents(),
            initial_stock: u64::from(initial_stock),
        })
    }

    fn restock(&self, quantity: Quantity) -> Result<ProductEvent, ProductError> {
        let quantity = u64::from(quantity.get());
        match self.on_hand.checked_add(quantity) {
            Some(on_hand) if on_hand <= Self::MAX_ON_HAND => {
                Ok(ProductEvent::Restocked { quantity })
            }
            _ => Err(ProductError::StockLimitExceeded),
        }
    }

    fn change_price(&self, price: Money) -> Result<Option<ProductEvent>, ProductError> {
        if !price.is_positive() {
            return Err(ProductError::PriceMustBePositive);
        }
        if price == self.price {
            return Ok(None);
        }
        Ok(Some(ProductEvent::PriceChanged {
            price_cents: price.cents(),
        }))
    }

    fn reserve_stock(&self, order_id: Uuid, quantity: Quantity) -> Option<ProductEvent> {
        // Any earlier record means this order was already answered; the saga may redeliver.
        if self.reservations.contains_key(&order_id) {
            return None;
        }
        let quantity = u64::from(quantity.get());
        if !self.exists() {
            return Some(ProductEvent::StockReservationRejected {
                order_id,
                quantity,
                available: 0,
                reason: RejectionReason::UnknownProduct,
            });
        }
        let available = self.available();
        // Shortage is a fact the saga must hear about, so it is an event, not an error.
        if quantity > available {
            return Some(ProductEvent::StockReservationRejected {
                order_id,
                quantity,
                available,
                reason: RejectionReason::OutOfStock,
            });
        }
        Some(ProductEvent::StockReserved {
            order_id,
            quantity,
            unit_price_cents: self.price.cents(),
        })
    }

    fn release_reservation(&self, order_id: Uuid) -> Option<ProductEvent> {
        // Only held units can be given back. Shipped units cannot, and the saga must
        // hear that, so it is an event; every other case has nothing left to undo.
        match self.reservations.get(&order_id) {
            Some(reservation) if reservation.status == ReservationStatus::Reserved => {
                Some(ProductEvent::ReservationReleased {
                    order_id,
                    quantity: reservation.quantity,
                })
            }
            Some(reservation)
                if reservation.status == ReservationStatus::Committed
                    && !self.refused_releases.contains(&order_id) =>
            {
                Some(ProductEvent::ReservationReleaseRefused {
                    order_id,
                    quantity: reservation.quantity,
                    error: format!(
                        "{}: the {} units held for the order were already shipped",
                        self.sku, reservation.quantity
                    ),
                })
            }
            _ => None,
        }
    }

    fn commit_reservation(&self, order_id: Uuid) -> Result<Option<ProductEvent>, ProductError> {
        let reservation = self
            .reservations
            .get(&order_id)
            .map(|r| (r.status, r.quantity));
        match reservation {
            Some((ReservationStatus::Reserved, quantity)) => {
                Ok(Some(ProductEvent::ReservationCommitted {
                    order_id,
                    quantity,
                }))
            }
            Some((ReservationStatus::Committed, _)) => Ok(None),
            _ => Err(ProductError::ReservationNotFound { order_id }),
        }
    }

    fn record_reservation(&mut self, order_id: Uuid, quantity: u64, status: ReservationStatus) {
        self.reservations
            .insert(order_id, Reservation { quantity, status });
    }

    fn set_price(&mut self, price_cents: i64) {
        // Prices are recorded only from a valid `Money`, so a negative one cannot come
        // from `handle`; keeping the old price beats a panic while replaying.
        if let Ok(price) = Money::from_cents(price_cents) {
            self.price = price;
        }
    }
}

impl Aggregate for Product {
    const TYPE: &'static str = "Product";
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    // Saturating arithmetic keeps replay total: `handle` never records an event that
    // would overflow or underflow, so it only matters for a store edited by hand.
    fn apply(&mut self, event: Self::Event) {
        match event {
            ProductEvent::ProductAdded {
                sku,
                name,
                price_cents,
                initial_stock,
            } => {
                self.sku = sku;
                self.name = name;
                self.set_price(price_cents);
                self.on_hand = initial_stock;
            }
            ProductEvent::Restocked { quantity } => {
                self.on_hand = self.on_hand.saturating_add(quantity);
            }
            ProductEvent::PriceChanged { price_cents } => self.set_price(price_cents),
            ProductEvent::StockReserved {
                order_id, quantity, ..
            } => {
                self.reserved = self.reserved.saturating_add(quantity);
                self.record_reservation(order_id, quantity, ReservationStatus::Reserved);
            }
            ProductEvent::StockReservationRejected {
                order_id, quantity, ..
            } => self.record_reservation(order_id, quantity, ReservationStatus::Rejected),
            ProductEvent::ReservationReleased { order_id, quantity } => {
                self.reserved = self.reserved.saturating_sub(quantity);
                self.record_reservation(order_id, quantity, ReservationStatus::Released);
            }
            ProductEvent::ReservationCommitted { order_id, quantity } => {
                self.reserved = self.reserved.saturating_sub(quantity);
                self.on_hand = self.on_hand.saturating_sub(quantity);
                self.record_reservation(order_id, quantity, ReservationStatus::Committed);
            }
            ProductEvent::ReservationReleaseRefused { order_id, .. } => {
                self.refused_releases.insert(order_id);
            }
        }
    }
}

//! Given/when/then tests of the product aggregate, with the helpers they share.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::*;
use crate::values::{Money, ProductName, Quantity, Sku};

type ProductTest = TestFramework<Product>;

const ORDER: Uuid = Uuid::from_u128(1);
const OTHER_ORDER: Uuid = Uuid::from_u128(2);

fn product() -> ProductTest {
    TestFramework::with(())
}

fn quantity(units: u32) -> Quantity {
    Quantity::new(units).unwrap()
}

fn money(cents: i64) -> Money {
    Money::from_cents(cents).unwrap()
}

fn added(initial_stock: u64) -> ProductEvent {
    ProductEvent::ProductAdded {
        sku: "MUG-1".into(),
        name: "Blue mug".into(),
        price_cents: 1299,
        initial_stock,
    }
}

fn add_product(price_cents: i64, initial_stock: u32) -> ProductCommand {
    ProductCommand::AddProduct {
        sku: Sku::parse("MUG-1").unwrap(),
        name: ProductName::parse("Blue mug").unwrap(),
        price: money(price_cents),
        initial_stock,
    }
}

fn reserved(order_id: Uuid, units: u64) -> ProductEvent {
    ProductEvent::StockReserved {
        order_id,
        quantity: units,
        unit_price_cents: 1299,
    }
}

fn rejected(order_id: Uuid, units: u64, available: u64) -> ProductEvent {
    ProductEvent::StockReservationRejected {
        order_id,
        quantity: units,
        available,
        reason: RejectionReason::OutOfStock,
    }
}

fn unknown(order_id: Uuid, units: u64) -> ProductEvent {
    ProductEvent::StockReservationRejected {
        order_id,
        quantity: units,
        available: 0,
        reason: RejectionReason::UnknownProduct,
    }
}

fn reserve(order_id: Uuid, units: u32) -> ProductCommand {
    ProductCommand::ReserveStock {
        order_id,
        quantity: quantity(units),
    }
}

fn replay(events: Vec<ProductEvent>) -> Product {
    let mut product = Product::default();
    for event in events {
        product.apply(event);
    }
    product
}

mod lifecycle;
mod reservations;

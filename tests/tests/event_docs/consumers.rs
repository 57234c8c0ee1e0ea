//! Which durable consumers handle which event types: the projections of the
//! projection worker and the saga reactions of the command services. The event
//! types are the consumers' own filters (a saga's `REACTS_TO`, a projection's
//! lists such as `customers::ORDER_EVENTS`), so they cannot drift; the
//! projections' entries are checked against `projections::app::PROJECTIONS` by the
//! tests in `main.rs`.

/// What a consumer is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A read model of the projection worker, by its admin name.
    Projection(&'static str),
    /// The saga reactions of a command service, by the service's name.
    Saga(&'static str),
}

/// The event types of its source a consumer acts on.
#[derive(Debug, Clone, Copy)]
pub enum Handles {
    /// Every event type of the aggregate: the handler decodes each and matches on
    /// the enum exhaustively, so a new event type is handled or fails to compile.
    All,
    /// Only these; others are skipped.
    Only(&'static [&'static str]),
}

/// One durable consumer and what it reads.
#[derive(Debug, Clone, Copy)]
pub struct Consumer {
    /// The JetStream durable name.
    pub durable_name: &'static str,
    /// The projection or saga it belongs to.
    pub role: Role,
    /// The service whose stream it reads.
    pub service: &'static str,
    /// The aggregate type its filter subject selects.
    pub aggregate_type: &'static str,
    /// The event types it acts on.
    pub handles: Handles,
}

impl Consumer {
    /// Whether it acts on `event_type` of its aggregate type.
    pub fn handles(&self, event_type: &str) -> bool {
        match self.handles {
            Handles::All => true,
            Handles::Only(types) => types.contains(&event_type),
        }
    }
}

const fn consumer(
    durable_name: &'static str,
    role: Role,
    source: (&'static str, &'static str),
    handles: Handles,
) -> Consumer {
    Consumer {
        durable_name,
        role,
        service: source.0,
        aggregate_type: source.1,
        handles,
    }
}

const CUSTOMER: (&str, &str) = ("customers", "Customer");
const PRODUCT: (&str, &str) = ("inventory", "Product");
const ORDER: (&str, &str) = ("orders", "Order");
const PAYMENT: (&str, &str) = ("payments", "Payment");

/// Every durable consumer of the shop's streams.
pub const CONSUMERS: &[Consumer] = &[
    // The projection worker's read models.
    consumer(
        "products",
        Role::Projection("products"),
        PRODUCT,
        Handles::All,
    ),
    consumer("orders", Role::Projection("orders"), ORDER, Handles::All),
    consumer(
        "customers-from-customers",
        Role::Projection("customers"),
        CUSTOMER,
        Handles::All,
    ),
    consumer(
        "customers-from-orders",
        Role::Projection("customers"),
        ORDER,
        Handles::Only(projections::customers::ORDER_EVENTS),
    ),
    consumer(
        "customers-from-payments",
        Role::Projection("customers"),
        PAYMENT,
        Handles::Only(projections::customers::PAYMENT_EVENTS),
    ),
    consumer(
        "payments",
        Role::Projection("payments"),
        PAYMENT,
        Handles::All,
    ),
    consumer(
        "notifications-from-customers",
        Role::Projection("notifications"),
        CUSTOMER,
        Handles::Only(projections::notifications::CUSTOMER_EVENTS),
    ),
    consumer(
        "notifications-from-orders",
        Role::Projection("notifications"),
        ORDER,
        Handles::Only(projections::notifications::ORDER_EVENTS),
    ),
    // The order saga's reactions.
    consumer(
        inventory::SAGA_DURABLE_NAME,
        Role::Saga("inventory"),
        ORDER,
        Handles::Only(&inventory::SAGA_REACTS_TO),
    ),
    consumer(
        orders::reactions::InventoryReactions::DURABLE_NAME,
        Role::Saga("orders"),
        PRODUCT,
        Handles::Only(&orders::reactions::InventoryReactions::REACTS_TO),
    ),
    consumer(
        orders::reactions::PaymentReactions::DURABLE_NAME,
        Role::Saga("orders"),
        PAYMENT,
        Handles::Only(&orders::reactions::PaymentReactions::REACTS_TO),
    ),
    consumer(
        payments::reactions::FROM_CUSTOMERS,
        Role::Saga("payments"),
        CUSTOMER,
        Handles::Only(&payments::reactions::CustomerReactions::REACTS_TO),
    ),
    consumer(
        payments::reactions::FROM_ORDERS,
        Role::Saga("payments"),
        ORDER,
        Handles::Only(&payments::reactions::OrderReactions::REACTS_TO),
    ),
];

//! The reactions applied directly, with no consumer in front: every one may run
//! again for the same event (a redelivery, or a batch retried after a fault) and
//! must then change nothing, whatever point an earlier run reached.

mod support;

use std::time::Duration;

use domain::payments::{CreditCommand, CreditDecision, DeclineReason, PaymentStatus};
use domain::values::Money;
use payments::reactions::{CustomerReactions, OrderReactions, Stores};
use platform::consumer::Handler;
use platform::db::EVENT_STORE_MIGRATIONS;
use platform::event_store::CommandContext;
use platform::testing::TestDb;
use platform::Envelope;
use support::{Customer, Order};
use uuid::Uuid;

struct Reactions {
    db: TestDb,
    stores: Stores,
    customers: CustomerReactions,
    orders: OrderReactions,
}

impl Reactions {
    /// Reactions that decline an unknown customer's order at once.
    async fn new() -> Self {
        let db = TestDb::new(&[&EVENT_STORE_MIGRATIONS])
            .await
            .expect("test database");
        let stores = Stores::new(db.pool.clone());
        Self {
            customers: CustomerReactions::new(stores.credits.clone()),
            orders: OrderReactions::new(stores.clone(), Duration::ZERO),
            stores,
            db,
        }
    }

    async fn apply(&self, envelopes: &[Envelope]) {
        let mut connection = self.db.pool.acquire().await.expect("connection");
        for envelope in envelopes {
            let handler: &dyn Handler = match envelope.service.as_str() {
                "customers" => &self.customers,
                _ => &self.orders,
            };
            handler
                .apply(&mut connection, envelope)
                .await
                .unwrap_or_else(|error| panic!("apply {}: {error:#}", envelope.event_id));
        }
    }

    /// Every stored event as `(aggregate_id, sequence, event_type)`.
    async fn stored(&self) -> Vec<(String, i64, String)> {
        sqlx::query_as(
            "SELECT aggregate_id, sequence, event_type FROM events
              ORDER BY aggregate_id, sequence",
        )
        .fetch_all(&self.db.pool)
        .await
        .expect("read events")
    }

    async fn payment_status(&self, order: &Order) -> Option<PaymentStatus> {
        let (payment, _) = self
            .stores
            .payments
            .load(&order.id.to_string())
            .await
            .expect("load payment");
        payment.status()
    }

    async fn credit(&self, customer_id: Uuid) -> domain::payments::CustomerCredit {
        let (credit, _) = self
            .stores
            .credits
            .load(&customer_id.to_string())
            .await
            .expect("load credit");
        credit
    }
}

fn money(cents: i64) -> Money {
    Money::from_cents(cents).expect("valid amount")
}

#[tokio::test]
async fn applying_every_event_again_writes_nothing_new() {
    let reactions = Reactions::new().await;
    let mut customer = Customer::new();
    let mut shipped = Order::new(customer.id);
    let mut cancelled = Order::new(customer.id);
    let mut over_limit = Order::new(customer.id);
    let mut inactive = Order::new(customer.id);
    let mut unknown = Order::new(Uuid::now_v7());
    let mut history = vec![customer.registered(10_000), customer.limit_changed(12_000)];
    history.extend(shipped.placed_with_total(6_000));
    history.extend(cancelled.placed_with_total(5_000));
    history.extend(over_limit.placed_with_total(2_000));
    history.extend([
        shipped.shipped(),
        cancelled.cancelled(),
        customer.deactivated(),
    ]);
    history.extend(inactive.placed_with_total(10));
    history.extend(unknown.placed_with_total(10));

    reactions.apply(&history).await;
    let stored = reactions.stored().await;
    for envelope in &history {
        reactions.apply(&[envelope.clone(), envelope.clone()]).await;
    }
    reactions.apply(&history).await;
    assert_eq!(reactions.stored().await, stored);

    let statuses = [
        reactions.payment_status(&shipped).await,
        reactions.payment_status(&cancelled).await,
        reactions.payment_status(&over_limit).await,
        reactions.payment_status(&inactive).await,
        reactions.payment_status(&unknown).await,
    ];
    use PaymentStatus::*;
    let expected = [Captured, Voided, Declined, Declined, Declined].map(Some);
    assert_eq!(statuses, expected);
    let credit = reactions.credit(customer.id).await;
    assert_eq!(credit.credit_limit(), money(12_000));
    assert!(credit.is_suspended());
    assert_eq!(
        (credit.reserved(), credit.captured()),
        (Money::ZERO, money(6_000))
    );
}

#[tokio::test]
async fn a_stop_between_holding_credit_and_recording_the_payment_is_finished_by_the_redelivery() {
    let reactions = Reactions::new().await;
    let mut customer = Customer::new();
    let mut order = Order::new(customer.id);
    reactions.apply(&[customer.registered(10_000)]).await;
    let reserve = CreditCommand::ReserveCredit {
        order_id: order.id,
        amount: money(4_000),
    };
    reactions
        .stores
        .credits
        .execute(
            &customer.id.to_string(),
            reserve,
            &CommandContext::default(),
        )
        .await
        .expect("first commit only");

    reactions.apply(&order.placed_with_total(4_000)).await;
    assert_eq!(
        reactions.payment_status(&order).await,
        Some(PaymentStatus::Authorized)
    );
    assert_eq!(reactions.credit(customer.id).await.reserved(), money(4_000));
}

#[tokio::test]
async fn a_stop_between_releasing_credit_and_voiding_is_finished_by_the_redelivery() {
    let reactions = Reactions::new().await;
    let mut customer = Customer::new();
    let mut order = Order::new(customer.id);
    reactions.apply(&[customer.registered(10_000)]).await;
    reactions.apply(&order.placed_with_total(4_000)).await;
    let release = CreditCommand::ReleaseCredit { order_id: order.id };
    reactions
        .stores
        .credits
        .execute(
            &customer.id.to_string(),
            release,
            &CommandContext::default(),
        )
        .await
        .expect("first commit only");

    reactions.apply(&[order.cancelled()]).await;
    assert_eq!(
        reactions.payment_status(&order).await,
        Some(PaymentStatus::Voided)
    );
    let credit = reactions.credit(customer.id).await;
    assert_eq!(
        (credit.reserved(), credit.available()),
        (Money::ZERO, money(10_000))
    );
}

#[tokio::test]
async fn an_order_declined_as_unknown_holds_no_credit_when_redelivered_after_the_registration() {
    let reactions = Reactions::new().await;
    let mut customer = Customer::new();
    let mut order = Order::new(customer.id);
    let placed = order.placed_with_total(3_000);
    reactions.apply(&placed).await;
    reactions.apply(&[customer.registered(10_000)]).await;
    reactions.apply(&placed).await;

    let (payment, version) = reactions
        .stores
        .payments
        .load(&order.id.to_string())
        .await
        .expect("load payment");
    assert_eq!(
        (payment.reason(), version),
        (Some(DeclineReason::UnknownCustomer), 1)
    );
    let credit = reactions.credit(customer.id).await;
    assert_eq!(credit.decision(order.id), None::<CreditDecision>);
    assert_eq!(credit.available(), money(10_000));
}

#[tokio::test]
async fn a_shipped_or_cancelled_order_without_an_authorized_payment_changes_nothing() {
    let reactions = Reactions::new().await;
    let mut customer = Customer::new();
    reactions.apply(&[customer.registered(100)]).await;
    let mut declined = Order::new(customer.id);
    reactions.apply(&declined.placed_with_total(500)).await;
    let stored = reactions.stored().await;
    let mut never_priced = Order::new(customer.id);
    reactions
        .apply(&[declined.shipped(), never_priced.cancelled()])
        .await;
    assert_eq!(reactions.stored().await, stored);
}

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::runtime::Runtime;
use uuid::Uuid;

use super::*;
use crate::values::Money;

const CUSTOMER: Uuid = Uuid::from_u128(100);
const ORDERS: [Uuid; 5] = [
    Uuid::from_u128(1),
    Uuid::from_u128(2),
    Uuid::from_u128(3),
    Uuid::from_u128(4),
    Uuid::from_u128(5),
];

fn order_id() -> impl Strategy<Value = Uuid> {
    prop::sample::select(ORDERS.to_vec())
}

fn money(max_cents: i64) -> impl Strategy<Value = Money> {
    (0..=max_cents).prop_map(|cents| Money::from_cents(cents).unwrap())
}

fn credit_command() -> impl Strategy<Value = CreditCommand> {
    prop_oneof![
        1 => (money(60_000), 1..12i64).prop_map(|(credit_limit, customer_sequence)| {
            CreditCommand::UpdateLimit {
                credit_limit,
                customer_sequence,
            }
        }),
        1 => (1..12i64).prop_map(|customer_sequence| CreditCommand::Suspend { customer_sequence }),
        4 => (order_id(), money(30_000))
            .prop_map(|(order_id, amount)| CreditCommand::ReserveCredit { order_id, amount }),
        2 => order_id().prop_map(|order_id| CreditCommand::ReleaseCredit { order_id }),
        2 => order_id().prop_map(|order_id| CreditCommand::CaptureCredit { order_id }),
    ]
}

/// Runs `handle` on a copy, as the framework does on a freshly loaded aggregate, and
/// returns the copy's state along with what was recorded.
fn handle(
    runtime: &Runtime,
    credit: &CustomerCredit,
    command: CreditCommand,
) -> (CustomerCredit, Result<Vec<CreditEvent>, CreditError>) {
    let mut handled = credit.clone();
    let sink = EventSink::default();
    let result = runtime.block_on(async {
        handled.handle(command, &(), &sink).await?;
        Ok(sink.collect().await)
    });
    (handled, result)
}

/// Sums the amounts of the orders whose decision `select` picks.
fn sum_of(credit: &CustomerCredit, select: fn(CreditDecision) -> bool) -> i64 {
    ORDERS
        .iter()
        .filter_map(|order_id| credit.decision(*order_id))
        .filter(|decision| select(*decision))
        .map(|decision| decision.amount().cents())
        .sum()
}

fn check_credit_invariants(credit: &CustomerCredit) -> Result<(), TestCaseError> {
    let reserved = sum_of(credit, |d| matches!(d, CreditDecision::Reserved { .. }));
    let captured = sum_of(credit, |d| matches!(d, CreditDecision::Captured { .. }));
    prop_assert_eq!(credit.reserved().cents(), reserved);
    prop_assert_eq!(credit.captured().cents(), captured);
    let left = credit.credit_limit().cents() - reserved - captured;
    prop_assert_eq!(credit.available().cents(), left.max(0));
    Ok(())
}

proptest! {
    #[test]
    fn credit_is_reserved_only_within_what_is_available_and_always_adds_up(
        credit_limit in money(60_000),
        commands in prop::collection::vec(credit_command(), 1..60),
        opened_after in prop_oneof![3 => Just(0usize), 1 => 0..70usize],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let open = CreditCommand::OpenAccount {
            customer_id: CUSTOMER,
            credit_limit,
            customer_sequence: 1,
        };
        // Usually the customer is known first, but an order may ask before that.
        let mut commands = commands;
        if opened_after <= commands.len() {
            commands.insert(opened_after, open);
        }
        let mut credit = CustomerCredit::default();
        let mut history = Vec::new();
        for command in commands {
            let before = credit.clone();
            let (handled, result) = handle(&runtime, &credit, command);
            match result {
                Ok(events) => {
                    for event in events {
                        if let CreditEvent::CreditReserved { amount_cents, .. } = event {
                            prop_assert!(!before.is_suspended());
                            prop_assert!(amount_cents <= before.available().cents());
                        }
                        credit.apply(event.clone());
                        history.push(event);
                    }
                }
                Err(CreditError::UnknownCustomer) => prop_assert!(!before.is_open()),
                Err(CreditError::NothingToCapture) => {}
            }
            prop_assert_eq!(&handled, &credit);
            prop_assert!(credit.customer_sequence() >= before.customer_sequence());
            for order_id in ORDERS {
                // Once an order has an answer, only its reservation may move on.
                if let Some(earlier) = before.decision(order_id) {
                    let later = credit.decision(order_id);
                    prop_assert!(later.is_some());
                    if !matches!(earlier, CreditDecision::Reserved { .. }) {
                        prop_assert_eq!(later, Some(earlier));
                    }
                }
            }
            check_credit_invariants(&credit)?;
        }
        let mut replayed = CustomerCredit::default();
        for event in history {
            replayed.apply(event);
        }
        prop_assert_eq!(replayed, credit);
    }
}

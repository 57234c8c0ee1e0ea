//! Customer events keep each customer's credit as payments knows it.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use domain::customers::CustomerEvent;
use domain::payments::{CreditCommand, CustomerCredit};
use domain::values::Money;
use platform::consumer::Handler;
use platform::event_store::AggregateStore;
use platform::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{context, settle};

/// Opens, updates and suspends credit accounts as customers register, change
/// their limit and are deactivated. Each command carries the customer event's
/// sequence, so a redelivered event is recognised and changes nothing.
pub struct CustomerReactions {
    credits: Arc<AggregateStore<CustomerCredit>>,
}

impl CustomerReactions {
    /// The customer events payments follows; `docs/events.md` lists them.
    pub const REACTS_TO: [&'static str; 3] = [
        "CustomerRegistered",
        "CreditLimitChanged",
        "CustomerDeactivated",
    ];

    /// Reactions that write to `credits`.
    pub fn new(credits: Arc<AggregateStore<CustomerCredit>>) -> Self {
        Self { credits }
    }
}

#[async_trait]
impl Handler for CustomerReactions {
    fn name(&self) -> &str {
        "customer credit"
    }

    async fn apply(&self, _tx: &mut PgConnection, envelope: &Envelope) -> anyhow::Result<()> {
        let Some(command) = credit_command(envelope)? else {
            return Ok(());
        };
        let customer = customer_key(&envelope.aggregate_id)?;
        let outcome = self
            .credits
            .execute(&customer, command, &context(envelope))
            .await;
        settle(outcome, "a credit account change").map(drop)
    }
}

/// The credit command a customer event calls for, if any. Event types payments
/// does not follow are passed over without decoding, so a new one in a later
/// version of the customers service does not stop the consumer.
fn credit_command(envelope: &Envelope) -> anyhow::Result<Option<CreditCommand>> {
    if !CustomerReactions::REACTS_TO.contains(&envelope.event_type.as_str()) {
        return Ok(None);
    }
    let event: CustomerEvent = envelope
        .decode()
        .with_context(|| format!("decode {} as a customer event", envelope.event_type))?;
    let customer_sequence = envelope.sequence;
    let command = match event {
        CustomerEvent::CustomerRegistered {
            customer_id,
            credit_limit_cents,
            ..
        } => CreditCommand::OpenAccount {
            customer_id,
            credit_limit: credit_limit(credit_limit_cents)?,
            customer_sequence,
        },
        CustomerEvent::CreditLimitChanged { credit_limit_cents } => CreditCommand::UpdateLimit {
            credit_limit: credit_limit(credit_limit_cents)?,
            customer_sequence,
        },
        CustomerEvent::CustomerDeactivated {} => CreditCommand::Suspend { customer_sequence },
    };
    Ok(Some(command))
}

fn credit_limit(cents: i64) -> anyhow::Result<Money> {
    Money::from_cents(cents).with_context(|| format!("credit limit of {cents} cents"))
}

/// The credit account's id: the customer id in its canonical form, the same one
/// the orders' `customer_id` fields give when printed.
fn customer_key(customer_id: &str) -> anyhow::Result<String> {
    let id = Uuid::parse_str(customer_id)
        .with_context(|| format!("customer id {customer_id} is not a UUID"))?;
    Ok(id.to_string())
}

//! The customer aggregate: its state, the decisions in `handle` and how events change it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CustomerCommand, CustomerError, CustomerEvent};
use crate::values::{Email, Money, PersonName};

/// One customer's identity, contact details and credit limit, rebuilt from their events.
/// The aggregate id is the customer id as a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    customer_id: Option<Uuid>,
    name: String,
    email: String,
    credit_limit: Money,
    active: bool,
}

impl Customer {
    /// Whether the customer has been registered.
    pub fn exists(&self) -> bool {
        self.customer_id.is_some()
    }

    /// The customer's id, or `None` before registration.
    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    /// How to address the customer, or `""` before registration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The normalized email address, or `""` before registration.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The most the customer's authorized and captured payments may add up to.
    pub fn credit_limit(&self) -> Money {
        self.credit_limit
    }

    /// Whether the customer is registered and not deactivated.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Decides what a command records, without changing the state.
    fn decide(&self, command: CustomerCommand) -> Result<Option<CustomerEvent>, CustomerError> {
        match command {
            CustomerCommand::RegisterCustomer {
                customer_id,
                name,
                email,
                credit_limit,
            } => self
                .register(customer_id, name, email, credit_limit)
                .map(Some),
            _ if !self.exists() => Err(CustomerError::NotFound),
            CustomerCommand::ChangeCreditLimit { credit_limit } => {
                self.change_credit_limit(credit_limit)
            }
            CustomerCommand::Deactivate => Ok(self.deactivate()),
        }
    }

    fn register(
        &self,
        customer_id: Uuid,
        name: PersonName,
        email: Email,
        credit_limit: Money,
    ) -> Result<CustomerEvent, CustomerError> {
        if self.exists() {
            return Err(CustomerError::AlreadyRegistered);
        }
        Ok(CustomerEvent::CustomerRegistered {
            customer_id,
            name: name.into(),
            email: email.into(),
            credit_limit_cents: credit_limit.cents(),
        })
    }

    fn change_credit_limit(
        &self,
        credit_limit: Money,
    ) -> Result<Option<CustomerEvent>, CustomerError> {
        if !self.active {
            return Err(CustomerError::Inactive);
        }
        if credit_limit == self.credit_limit {
            return Ok(None);
        }
        Ok(Some(CustomerEvent::CreditLimitChanged {
            credit_limit_cents: credit_limit.cents(),
        }))
    }

    fn deactivate(&self) -> Option<CustomerEvent> {
        self.active.then_some(CustomerEvent::CustomerDeactivated {})
    }

    fn set_credit_limit(&mut self, credit_limit_cents: i64) {
        // Limits are recorded only from a valid `Money`, so a negative one cannot come
        // from `handle`; keeping the old limit beats a panic while replaying.
        if let Ok(credit_limit) = Money::from_cents(credit_limit_cents) {
            self.credit_limit = credit_limit;
        }
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = "Customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
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

    fn apply(&mut self, event: Self::Event) {
        match event {
            CustomerEvent::CustomerRegistered {
                customer_id,
                name,
                email,
                credit_limit_cents,
            } => {
                self.customer_id = Some(customer_id);
                self.name = name;
                self.email = email;
                self.set_credit_limit(credit_limit_cents);
                self.active = true;
            }
            CustomerEvent::CreditLimitChanged { credit_limit_cents } => {
                self.set_credit_limit(credit_limit_cents);
            }
            CustomerEvent::CustomerDeactivated {} => self.active = false,
        }
    }
}

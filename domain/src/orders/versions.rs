//! The schema changes of order events, and how older payloads are lifted to the
//! current ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{OrderEvent, OrderStatus};
use crate::versioning::{SchemaChange, VersionedEvent};

impl VersionedEvent for OrderEvent {
    const SCHEMA_CHANGES: &'static [SchemaChange] = &[SchemaChange {
        event_type: "OrderCancelled",
        version: "2.0",
        summary: "`was` is renamed `cancelled_from`: a whole word that says which status \
                  the order was cancelled from.",
        previous_schema: <OrderCancelledV1 as utoipa::PartialSchema>::schema,
        upcast: order_cancelled_v2,
    }];
}

/// The payload of `OrderCancelled` at version 1.0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelledV1 {
    /// The customer's words, if any.
    pub reason: Option<String>,
    /// The status it was cancelled from: PENDING or CONFIRMED.
    pub was: OrderStatus,
}

/// The payload of `OrderCancelled` at version 2.0, as `OrderEvent` writes it.
#[derive(Serialize)]
struct OrderCancelledV2 {
    reason: Option<String>,
    cancelled_from: OrderStatus,
}

/// `OrderCancelled` 1.0 to 2.0. A payload that is not 1.0, such as a 2.0 payload
/// mislabelled as 1.0, is left as it is.
fn order_cancelled_v2(fields: Value) -> Value {
    let Ok(OrderCancelledV1 { reason, was }) = serde_json::from_value(fields.clone()) else {
        return fields;
    };
    let lifted = OrderCancelledV2 {
        reason,
        cancelled_from: was,
    };
    serde_json::to_value(lifted).unwrap_or(fields)
}

#[cfg(test)]
mod tests {
    use cqrs_es::DomainEvent;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_version_one_cancellation_keeps_its_reason_and_status() {
        let v1 = json!({"reason": "changed my mind", "was": "PENDING"});
        assert_eq!(
            order_cancelled_v2(v1),
            json!({"reason": "changed my mind", "cancelled_from": "PENDING"})
        );
    }

    #[test]
    fn a_payload_that_is_not_version_one_is_left_alone() {
        let v2 = json!({"reason": null, "cancelled_from": "CONFIRMED"});
        assert_eq!(order_cancelled_v2(v2.clone()), v2);
        let broken = json!({"was": 7});
        assert_eq!(order_cancelled_v2(broken.clone()), broken);
    }

    #[test]
    fn a_lifted_payload_decodes_as_the_current_event() {
        let lifted = order_cancelled_v2(json!({"reason": null, "was": "CONFIRMED"}));
        let event: OrderEvent =
            serde_json::from_value(json!({ "OrderCancelled": lifted })).unwrap();
        assert_eq!(
            event,
            OrderEvent::OrderCancelled {
                reason: None,
                cancelled_from: OrderStatus::Confirmed,
            }
        );
        assert_eq!(event.event_version(), "2.0");
    }
}

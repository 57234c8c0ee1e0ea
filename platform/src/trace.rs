//! One request through the whole system: every event that carries its correlation
//! id, read from each command service's event store, and put in causal order.
//!
//! Each command service answers `GET /api/admin/events?correlation_id=X` with its own
//! events of that request; the gateway asks all four and merges them with
//! [`causal_order`] into `GET /api/trace/{correlation_id}`.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use anyhow::Context;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::envelope::{Envelope, CAUSATION_ID, CORRELATION_ID};
use crate::event_store::{EventRow, EVENT_COLUMNS};
use crate::http::{self, ApiError, FieldError, Json, Query};

/// The path under which every command service lists the events of one request.
pub const EVENTS_BY_CORRELATION_PATH: &str = "/api/admin/events";

/// Every event of one request, across services: the answer of the command services'
/// `GET /api/admin/events?correlation_id=X` (their own events, in log order) and of
/// the gateway's `GET /api/trace/{correlation_id}` (all of them, in causal order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trace {
    /// The request id that every event carries as its `correlation_id`.
    pub correlation_id: String,
    /// The events: each comes after the event that caused it.
    pub events: Vec<Envelope>,
}

/// The query of `GET /api/admin/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CorrelationQuery {
    /// The request id to look for in the events' metadata.
    pub correlation_id: String,
}

/// Reads every event of the service's store whose metadata names `correlation_id`,
/// in the order the service logged them. The index of migration 0004 serves it.
pub async fn events_by_correlation(
    pool: &PgPool,
    service: &str,
    correlation_id: &str,
) -> anyhow::Result<Vec<Envelope>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE metadata ->> '{CORRELATION_ID}' = $1
          ORDER BY global_position"
    );
    let rows: Vec<EventRow> = sqlx::query_as(&sql)
        .bind(correlation_id)
        .fetch_all(pool)
        .await
        .context("read the events of a correlation id")?;
    Ok(rows
        .into_iter()
        .map(|row| row.into_envelope(service))
        .collect())
}

/// The route `GET /api/admin/events?correlation_id=X` of a command service, on the
/// event store behind `pool`. An unknown correlation id is an empty list, not a 404:
/// a request may well have touched only some services.
pub fn router(pool: PgPool, service: &'static str) -> Router {
    http::with_common_layers(
        Router::new()
            .route(EVENTS_BY_CORRELATION_PATH, get(list_events))
            .with_state((pool, service)),
    )
}

async fn list_events(
    State((pool, service)): State<(PgPool, &'static str)>,
    Query(query): Query<CorrelationQuery>,
) -> Result<Json<Trace>, ApiError> {
    if query.correlation_id.trim().is_empty() {
        return Err(ApiError::validation(vec![FieldError::new(
            "correlation_id",
            "must not be empty",
        )]));
    }
    let events = events_by_correlation(&pool, service, &query.correlation_id).await?;
    Ok(Json(Trace {
        correlation_id: query.correlation_id,
        events,
    }))
}

/// Puts the events of one request in causal order: every event after the event
/// named by its `causation_id` (a saga reaction names the event it reacted to; a
/// command from HTTP names the request, which is no event, so its events come
/// first). Among events whose causes are all placed, the earliest recorded goes
/// first, then by service, sequence and log position. Broken data, such as a
/// causation cycle, never loses an event: the earliest one left is placed next.
pub fn causal_order(mut events: Vec<Envelope>) -> Vec<Envelope> {
    events.sort_by(tie_order);
    let position: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(index, event)| (event.event_id.as_str(), index))
        .collect();
    let mut effects: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    let mut ready = BinaryHeap::new();
    for (index, event) in events.iter().enumerate() {
        let cause = event
            .metadata
            .get(CAUSATION_ID)
            .and_then(|id| position.get(id.as_str()))
            .filter(|&&cause| cause != index);
        match cause {
            Some(&cause) => effects[cause].push(index),
            None => ready.push(Reverse(index)),
        }
    }
    // Indices follow the tie order, so the smallest ready index is the next event.
    let mut placed = vec![false; events.len()];
    let mut order = Vec::with_capacity(events.len());
    while order.len() < events.len() {
        let next = match ready.pop() {
            Some(Reverse(index)) if placed[index] => continue,
            Some(Reverse(index)) => index,
            None => match placed.iter().position(|done| !done) {
                Some(index) => index,
                None => break,
            },
        };
        placed[next] = true;
        order.push(next);
        ready.extend(effects[next].iter().map(|&effect| Reverse(effect)));
    }
    let mut slots: Vec<Option<Envelope>> = events.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|index| slots[index].take())
        .collect()
}

/// The order of events that causation does not decide.
fn tie_order(a: &Envelope, b: &Envelope) -> Ordering {
    tie_key(a).cmp(&tie_key(b))
}

/// When the event was recorded, then by service, sequence and log position; the
/// event id makes the order total.
fn tie_key(event: &Envelope) -> (chrono::DateTime<chrono::Utc>, &str, i64, i64, &str) {
    (
        event.recorded_at,
        &event.service,
        event.sequence,
        event.global_position,
        &event.event_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event of `service` caused by `cause`, recorded `millis` after a fixed time.
    fn event(service: &str, id: &str, cause: &str, millis: i64) -> Envelope {
        Envelope {
            event_id: id.to_owned(),
            service: service.to_owned(),
            aggregate_type: "Aggregate".to_owned(),
            aggregate_id: id.to_owned(),
            sequence: 1,
            global_position: 1,
            event_type: format!("Event{id}"),
            event_version: "1.0".to_owned(),
            payload: serde_json::json!({}),
            metadata: HashMap::from([
                (CORRELATION_ID.to_owned(), "req-1".to_owned()),
                (CAUSATION_ID.to_owned(), cause.to_owned()),
            ]),
            recorded_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + millis)
                .expect("a valid time"),
        }
    }

    fn ids(events: &[Envelope]) -> Vec<&str> {
        events.iter().map(|e| e.event_id.as_str()).collect()
    }

    #[test]
    fn an_effect_comes_after_its_cause_even_when_recorded_earlier() {
        // Clocks of different hosts may disagree: causation wins over time.
        let events = vec![
            event("payments", "authorized", "reserved", 5),
            event("orders", "placed", "req-1", 10),
            event("inventory", "reserved", "placed", 1),
        ];
        assert_eq!(
            ids(&causal_order(events)),
            ["placed", "reserved", "authorized"]
        );
    }

    #[test]
    fn independent_events_are_ordered_by_time_then_service_then_sequence() {
        let mut second = event("orders", "o-2", "placed", 20);
        second.sequence = 2;
        let mut first = event("orders", "o-1", "placed", 20);
        first.sequence = 1;
        let events = vec![
            second,
            event("payments", "p", "placed", 20),
            first,
            event("inventory", "i", "placed", 20),
            event("inventory", "early", "placed", 15),
            event("orders", "placed", "req-1", 10),
        ];
        assert_eq!(
            ids(&causal_order(events)),
            ["placed", "early", "i", "o-1", "o-2", "p"]
        );
    }

    #[test]
    fn a_branch_does_not_wait_for_a_later_sibling_branch() {
        // Two reservations of one order; the order's answer to the first one comes
        // before the second reservation when it was recorded before it.
        let events = vec![
            event("orders", "placed", "req-1", 0),
            event("inventory", "mug", "placed", 10),
            event("inventory", "cap", "placed", 30),
            event("orders", "line-mug", "mug", 20),
            event("orders", "line-cap", "cap", 40),
        ];
        assert_eq!(
            ids(&causal_order(events)),
            ["placed", "mug", "line-mug", "cap", "line-cap"]
        );
    }

    #[test]
    fn a_causation_cycle_loses_no_event() {
        let events = vec![
            event("orders", "a", "b", 10),
            event("orders", "b", "a", 20),
            event("orders", "self", "self", 5),
        ];
        assert_eq!(ids(&causal_order(events)), ["self", "a", "b"]);
    }

    #[test]
    fn no_events_stay_no_events() {
        assert!(causal_order(Vec::new()).is_empty());
    }
}

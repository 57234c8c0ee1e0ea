//! Turns the raw fields of order requests into validated domain values, naming
//! every field that is wrong.

use domain::orders::OrderCommand;
use domain::values::{LineQuantity, OrderLine, OrderLines, Sku, ValueError};
use platform::http::{ApiError, FieldError};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Most characters a cancellation reason may have.
pub const MAX_REASON_CHARS: usize = 500;

/// A new order: who orders what.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceOrderRequest {
    /// The customer's id, a UUID.
    customer_id: String,
    /// 1 to 50 lines, each sku on at most one line.
    lines: Vec<LineRequest>,
}

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LineRequest {
    /// `^[A-Z0-9][A-Z0-9-]{0,31}$`
    sku: String,
    /// 1 to 1,000 units.
    quantity: i64,
}

/// The `PlaceOrder` command for `order_id`, or a 422 that names every wrong field,
/// such as `customer_id`, `lines` or `lines[1].quantity`.
pub fn place_order(order_id: Uuid, request: &PlaceOrderRequest) -> Result<OrderCommand, ApiError> {
    let mut errors = Vec::new();
    let customer_id = Uuid::parse_str(&request.customer_id)
        .map_err(|_| errors.push(FieldError::new("customer_id", "must be a UUID")));
    let lines = order_lines(&request.lines, &mut errors);
    match (customer_id, lines) {
        (Ok(customer_id), Some(lines)) if errors.is_empty() => Ok(OrderCommand::PlaceOrder {
            order_id,
            customer_id,
            lines,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

/// The lines, if they are all valid together; otherwise `None`, with the reasons
/// pushed onto `errors`.
fn order_lines(raw: &[LineRequest], errors: &mut Vec<FieldError>) -> Option<OrderLines> {
    let before = errors.len();
    if raw.is_empty() || raw.len() > OrderLines::MAX_LINES {
        let message = if raw.is_empty() {
            ValueError::TooFewLines
        } else {
            ValueError::TooManyLines {
                max: OrderLines::MAX_LINES,
            }
        };
        errors.push(FieldError::new("lines", message));
    }
    let mut lines = Vec::with_capacity(raw.len());
    for (index, line) in raw.iter().enumerate() {
        let sku = Sku::parse(&line.sku)
            .map_err(|e| errors.push(FieldError::new(format!("lines[{index}].sku"), e)));
        let quantity = LineQuantity::parse(line.quantity)
            .map_err(|e| errors.push(FieldError::new(format!("lines[{index}].quantity"), e)));
        if let (Ok(sku), Ok(quantity)) = (sku, quantity) {
            lines.push(OrderLine { sku, quantity });
        }
    }
    if errors.len() > before {
        return None;
    }
    OrderLines::new(lines)
        .map_err(|error| errors.push(lines_error(raw, error)))
        .ok()
}

/// Names the line that repeats a sku, or the whole list for any other rule.
fn lines_error(raw: &[LineRequest], error: ValueError) -> FieldError {
    let repeat = match &error {
        ValueError::RepeatedSku { sku } => raw
            .iter()
            .enumerate()
            .filter(|(_, line)| line.sku == sku.as_str())
            .nth(1)
            .map(|(index, _)| index),
        _ => None,
    };
    match repeat {
        Some(index) => FieldError::new(format!("lines[{index}].sku"), error),
        None => FieldError::new("lines", error),
    }
}

/// The reason given for a cancellation: trimmed, and `None` when blank.
pub fn cancel_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::validation(vec![FieldError::new(
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        )]));
    }
    Ok((!reason.is_empty()).then(|| reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(customer_id: &str, lines: &[(&str, i64)]) -> PlaceOrderRequest {
        PlaceOrderRequest {
            customer_id: customer_id.to_owned(),
            lines: lines
                .iter()
                .map(|(sku, quantity)| LineRequest {
                    sku: (*sku).to_owned(),
                    quantity: *quantity,
                })
                .collect(),
        }
    }

    fn fields(error: ApiError) -> Vec<String> {
        error
            .problem()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    const CUSTOMER: &str = "0190a0f6-0000-7000-8000-000000000001";

    #[test]
    fn a_valid_request_becomes_a_place_order_command() {
        let command = place_order(Uuid::nil(), &request(CUSTOMER, &[("MUG-1", 2)]));
        assert!(matches!(command, Ok(OrderCommand::PlaceOrder { .. })));
    }

    #[test]
    fn every_wrong_field_is_named() {
        let error = place_order(
            Uuid::nil(),
            &request("nope", &[("MUG-1", 2), ("bad", 0), ("TEA", 1001)]),
        )
        .unwrap_err();
        assert_eq!(
            fields(error),
            [
                "customer_id",
                "lines[1].sku",
                "lines[1].quantity",
                "lines[2].quantity"
            ]
        );
    }

    #[test]
    fn a_repeated_sku_names_its_second_line() {
        let error = place_order(
            Uuid::nil(),
            &request(CUSTOMER, &[("MUG-1", 1), ("TEA", 1), ("MUG-1", 2)]),
        )
        .unwrap_err();
        assert_eq!(fields(error), ["lines[2].sku"]);
    }

    #[test]
    fn no_lines_and_too_many_lines_name_the_list() {
        let none = place_order(Uuid::nil(), &request(CUSTOMER, &[])).unwrap_err();
        assert_eq!(fields(none), ["lines"]);
        let skus: Vec<String> = (0..51).map(|i| format!("SKU-{i}")).collect();
        let many: Vec<(&str, i64)> = skus.iter().map(|s| (s.as_str(), 1)).collect();
        let error = place_order(Uuid::nil(), &request(CUSTOMER, &many)).unwrap_err();
        assert_eq!(fields(error), ["lines"]);
    }

    #[test]
    fn a_blank_reason_is_no_reason_and_a_long_one_is_refused() {
        assert_eq!(cancel_reason(Some("  ".into())).unwrap(), None);
        assert_eq!(
            cancel_reason(Some(" late ".into())).unwrap(),
            Some("late".into())
        );
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert!(cancel_reason(Some(long)).is_err());
    }
}

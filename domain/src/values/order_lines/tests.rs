use serde_json::json;

use super::*;

fn line(sku: &str, units: u32) -> OrderLine {
    OrderLine {
        sku: Sku::parse(sku).unwrap(),
        quantity: LineQuantity::new(units).unwrap(),
    }
}

#[test]
fn a_line_quantity_from_one_to_a_thousand_is_valid() {
    assert_eq!(LineQuantity::new(1).unwrap().get(), 1);
    assert_eq!(LineQuantity::new(1_000).unwrap().get(), 1_000);
    assert_eq!(LineQuantity::parse(42).unwrap().to_string(), "42");
}

#[test]
fn a_line_quantity_outside_one_to_a_thousand_is_out_of_range() {
    let out_of_range = ValueError::QuantityOutOfRange { min: 1, max: 1_000 };
    assert_eq!(LineQuantity::new(0), Err(out_of_range.clone()));
    assert_eq!(LineQuantity::new(1_001), Err(out_of_range.clone()));
    for raw in [-1, i64::MIN, 1_001, i64::MAX] {
        assert_eq!(LineQuantity::parse(raw), Err(out_of_range.clone()), "{raw}");
    }
}

#[test]
fn a_line_quantity_serializes_as_a_plain_number() {
    let quantity = LineQuantity::new(3).unwrap();
    assert_eq!(serde_json::to_string(&quantity).unwrap(), "3");
    assert_eq!(serde_json::from_str::<LineQuantity>("3").unwrap(), quantity);
    assert!(serde_json::from_str::<LineQuantity>("0").is_err());
    assert!(serde_json::from_str::<LineQuantity>("1001").is_err());
}

#[test]
fn one_to_fifty_lines_with_distinct_skus_make_an_order() {
    let one = OrderLines::new(vec![line("MUG-1", 2)]).unwrap();
    assert_eq!(one.as_slice(), &[line("MUG-1", 2)]);
    let fifty: Vec<_> = (0..50).map(|n| line(&format!("SKU-{n}"), 1)).collect();
    let lines = OrderLines::new(fifty.clone()).unwrap();
    assert_eq!(lines.iter().count(), 50);
    assert_eq!(Vec::from(lines), fifty);
}

#[test]
fn an_order_without_lines_has_too_few() {
    assert_eq!(OrderLines::new(vec![]), Err(ValueError::TooFewLines));
}

#[test]
fn an_order_of_fifty_one_lines_has_too_many() {
    let lines = (0..51).map(|n| line(&format!("SKU-{n}"), 1)).collect();
    assert_eq!(
        OrderLines::new(lines),
        Err(ValueError::TooManyLines { max: 50 })
    );
}

#[test]
fn an_sku_on_two_lines_is_refused_by_name() {
    let lines = vec![line("MUG-1", 1), line("TEA-2", 1), line("MUG-1", 3)];
    let error = OrderLines::new(lines).unwrap_err();
    assert_eq!(
        error,
        ValueError::RepeatedSku {
            sku: Sku::parse("MUG-1").unwrap()
        }
    );
    assert!(error.to_string().contains("MUG-1"));
}

#[test]
fn order_lines_serialize_as_a_plain_list_and_deserialize_only_when_valid() {
    let lines = OrderLines::new(vec![line("MUG-1", 2), line("TEA-2", 1)]).unwrap();
    let expected = json!([
        {"sku": "MUG-1", "quantity": 2},
        {"sku": "TEA-2", "quantity": 1},
    ]);
    assert_eq!(serde_json::to_value(&lines).unwrap(), expected);
    assert_eq!(
        serde_json::from_value::<OrderLines>(expected).unwrap(),
        lines
    );
    for invalid in [
        json!([]),
        json!([{"sku": "MUG-1", "quantity": 1}, {"sku": "MUG-1", "quantity": 1}]),
        json!([{"sku": "mug", "quantity": 1}]),
        json!([{"sku": "MUG-1", "quantity": 0}]),
    ] {
        assert!(serde_json::from_value::<OrderLines>(invalid).is_err());
    }
}

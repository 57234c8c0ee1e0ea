use super::*;

#[test]
fn a_sku_of_capitals_digits_and_dashes_is_valid() {
    for raw in ["A", "7", "ABC-123", "X-", "A1-B2-C3", &"Z".repeat(32)] {
        let sku = Sku::parse(raw).unwrap();
        assert_eq!(sku.as_str(), raw);
        assert_eq!(sku.to_string(), raw);
    }
}

#[test]
fn a_malformed_sku_is_invalid() {
    let too_long = "Z".repeat(33);
    for raw in [
        "", "-ABC", "abc", "AB C", " ABC", "ABC_1", "ÄBC", "AB.C", &too_long,
    ] {
        assert_eq!(Sku::parse(raw), Err(ValueError::InvalidSku), "{raw:?}");
    }
}

#[test]
fn a_sku_serializes_as_a_plain_string() {
    let sku = Sku::parse("ABC-1").unwrap();
    assert_eq!(serde_json::to_string(&sku).unwrap(), r#""ABC-1""#);
    assert_eq!(serde_json::from_str::<Sku>(r#""ABC-1""#).unwrap(), sku);
}

#[test]
fn deserializing_an_invalid_sku_fails() {
    assert!(serde_json::from_str::<Sku>(r#""abc""#).is_err());
    assert!(serde_json::from_str::<Sku>(r#""""#).is_err());
}

#[test]
fn a_product_name_is_trimmed() {
    let name = ProductName::parse("  Blue mug \n").unwrap();
    assert_eq!(name.as_str(), "Blue mug");
}

#[test]
fn a_product_name_counts_characters_not_bytes() {
    assert!(ProductName::parse(&"é".repeat(200)).is_ok());
    assert_eq!(
        ProductName::parse(&"é".repeat(201)),
        Err(ValueError::InvalidName)
    );
}

#[test]
fn a_blank_or_overlong_product_name_is_invalid() {
    for raw in ["", "   ", "\t\n", &"n".repeat(201)] {
        assert_eq!(ProductName::parse(raw), Err(ValueError::InvalidName));
    }
}

#[test]
fn deserializing_a_blank_product_name_fails() {
    assert!(serde_json::from_str::<ProductName>(r#""  ""#).is_err());
}

#[test]
fn a_quantity_from_one_to_a_million_is_valid() {
    assert_eq!(Quantity::new(1).unwrap().get(), 1);
    assert_eq!(Quantity::new(1_000_000).unwrap().get(), 1_000_000);
    assert_eq!(Quantity::parse(42).unwrap().get(), 42);
}

#[test]
fn a_quantity_outside_one_to_a_million_is_out_of_range() {
    let out_of_range = ValueError::QuantityOutOfRange {
        min: 1,
        max: 1_000_000,
    };
    assert_eq!(Quantity::new(0), Err(out_of_range.clone()));
    assert_eq!(Quantity::new(1_000_001), Err(out_of_range.clone()));
    for raw in [
        0,
        -1,
        i64::MIN,
        1_000_001,
        i64::from(u32::MAX) + 1,
        i64::MAX,
    ] {
        assert_eq!(Quantity::parse(raw), Err(out_of_range.clone()), "{raw}");
    }
}

#[test]
fn a_quantity_deserializes_only_when_in_range() {
    assert_eq!(
        serde_json::from_str::<Quantity>("3").unwrap(),
        Quantity::new(3).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&Quantity::new(3).unwrap()).unwrap(),
        "3"
    );
    assert!(serde_json::from_str::<Quantity>("0").is_err());
    assert!(serde_json::from_str::<Quantity>("-2").is_err());
}

#[test]
fn money_of_zero_or_more_cents_is_valid() {
    assert_eq!(Money::from_cents(0).unwrap(), Money::ZERO);
    assert_eq!(Money::from_cents(1999).unwrap().cents(), 1999);
    assert!(!Money::ZERO.is_positive());
    assert!(Money::from_cents(1).unwrap().is_positive());
}

#[test]
fn negative_money_is_invalid() {
    assert_eq!(Money::from_cents(-1), Err(ValueError::NegativeMoney));
    assert!(serde_json::from_str::<Money>("-5").is_err());
}

#[test]
fn money_arithmetic_reports_overflow_as_none() {
    let price = Money::from_cents(250).unwrap();
    assert_eq!(price.checked_mul(4).unwrap().cents(), 1000);
    assert_eq!(price.checked_add(price).unwrap().cents(), 500);
    let most = Money::from_cents(i64::MAX).unwrap();
    assert_eq!(most.checked_add(price), None);
    assert_eq!(most.checked_mul(2), None);
}

#[test]
fn money_serializes_as_plain_cents() {
    let price = Money::from_cents(1999).unwrap();
    assert_eq!(serde_json::to_string(&price).unwrap(), "1999");
    assert_eq!(serde_json::from_str::<Money>("1999").unwrap(), price);
}

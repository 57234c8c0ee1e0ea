use super::*;

#[test]
fn a_person_name_is_trimmed() {
    let name = PersonName::parse("  Ada Lovelace \n").unwrap();
    assert_eq!(name.as_str(), "Ada Lovelace");
    assert_eq!(name.to_string(), "Ada Lovelace");
}

#[test]
fn a_blank_or_overlong_person_name_is_invalid() {
    assert!(PersonName::parse(&"é".repeat(200)).is_ok());
    for raw in ["", "  ", &"é".repeat(201)] {
        assert_eq!(PersonName::parse(raw), Err(ValueError::InvalidName));
    }
}

#[test]
fn a_person_name_serializes_as_a_plain_string() {
    let name = PersonName::parse("Ada").unwrap();
    assert_eq!(serde_json::to_string(&name).unwrap(), r#""Ada""#);
    assert_eq!(
        serde_json::from_str::<PersonName>(r#""Ada""#).unwrap(),
        name
    );
    assert!(serde_json::from_str::<PersonName>(r#""  ""#).is_err());
}

#[test]
fn an_email_is_trimmed_and_lower_cased() {
    let email = Email::parse("  Ada.Lovelace@Example.COM\t").unwrap();
    assert_eq!(email.as_str(), "ada.lovelace@example.com");
    assert_eq!(email.to_string(), "ada.lovelace@example.com");
}

#[test]
fn an_email_with_one_at_a_local_part_and_a_dotted_domain_is_valid() {
    for raw in ["a@b.c", "first+tag@mail.example.org", "x_y-z@sub.domain.io"] {
        assert_eq!(Email::parse(raw).unwrap().as_str(), raw);
    }
}

#[test]
fn a_malformed_email_is_invalid() {
    for raw in [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada@home@example.com",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada@.com",
        "ada@example.",
        "ada@example..com",
        "ada\u{0}@example.com",
    ] {
        assert_eq!(Email::parse(raw), Err(ValueError::InvalidEmail), "{raw:?}");
    }
}

#[test]
fn an_email_of_up_to_254_characters_is_valid() {
    let domain = "@example.com";
    let longest = format!("{}{domain}", "a".repeat(254 - domain.len()));
    assert!(Email::parse(&longest).is_ok());
    let too_long = format!("a{longest}");
    assert_eq!(Email::parse(&too_long), Err(ValueError::InvalidEmail));
}

#[test]
fn an_email_deserializes_normalized_and_only_when_valid() {
    let email: Email = serde_json::from_str(r#"" Ada@Example.com ""#).unwrap();
    assert_eq!(email.as_str(), "ada@example.com");
    assert_eq!(
        serde_json::to_string(&email).unwrap(),
        r#""ada@example.com""#
    );
    assert!(serde_json::from_str::<Email>(r#""not-an-email""#).is_err());
}

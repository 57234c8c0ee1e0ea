//! Validated value types. Parse input into these at the edge: a value that exists is valid,
//! and deserializing one runs the same checks as its constructor.

use std::fmt;

use serde::{Deserialize, Serialize};

mod contact;
mod order_lines;
#[cfg(test)]
mod tests;

pub use contact::{Email, PersonName};
pub use order_lines::{LineQuantity, OrderLine, OrderLines};

/// Why a raw input could not become a value; the message is fit to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The SKU does not match `^[A-Z0-9][A-Z0-9-]{0,31}$`.
    #[error(
        "SKU must be 1 to {max} characters of A-Z, 0-9 or '-', starting with a letter or digit",
        max = Sku::MAX_LEN
    )]
    InvalidSku,
    /// A product or person name is empty or too long once surrounding spaces are trimmed.
    #[error(
        "name must be 1 to {max} characters, not counting surrounding spaces",
        max = ProductName::MAX_CHARS
    )]
    InvalidName,
    /// The quantity lies outside the range an order line or a restock may carry.
    #[error("quantity must be between {min} and {max}")]
    QuantityOutOfRange {
        /// Smallest allowed quantity.
        min: u32,
        /// Largest allowed quantity.
        max: u32,
    },
    /// An amount of money is below zero.
    #[error("amount must not be negative")]
    NegativeMoney,
    /// The text is not a plausible email address.
    #[error(
        "email must be an address like name@example.com, without spaces and at most {max} characters",
        max = Email::MAX_CHARS
    )]
    InvalidEmail,
    /// An order has no lines.
    #[error("an order needs at least one line")]
    TooFewLines,
    /// An order has more lines than allowed.
    #[error("an order may have at most {max} lines")]
    TooManyLines {
        /// Most lines allowed.
        max: usize,
    },
    /// Two lines of one order name the same SKU.
    #[error("SKU {sku} appears on more than one line; put its whole quantity on one line")]
    RepeatedSku {
        /// The SKU that appears more than once.
        sku: Sku,
    },
}

/// A stock keeping unit: 1 to 32 characters of `A-Z`, `0-9` and `-`, not starting with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// Longest SKU accepted, in characters.
    pub const MAX_LEN: usize = 32;

    /// Checks `raw` against the SKU format; it is taken as is, neither trimmed nor upper-cased.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let bytes = raw.as_bytes();
        let well_formed = match bytes.split_first() {
            Some((first, rest)) => {
                bytes.len() <= Self::MAX_LEN
                    && is_sku_letter_or_digit(*first)
                    && rest
                        .iter()
                        .all(|b| is_sku_letter_or_digit(*b) || *b == b'-')
            }
            None => false,
        };
        if well_formed {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::InvalidSku)
        }
    }

    /// The SKU as text; it is also the id of the product aggregate.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_sku_letter_or_digit(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit()
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Sku {
    type Error = ValueError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Sku> for String {
    fn from(sku: Sku) -> Self {
        sku.0
    }
}

/// A product's display name: trimmed, 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductName(String);

impl ProductName {
    /// Longest name accepted, in characters (not bytes).
    pub const MAX_CHARS: usize = 200;

    /// Trims surrounding whitespace from `raw` and checks the length of what is left.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        trimmed_name(raw, Self::MAX_CHARS).map(Self)
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `raw` without surrounding whitespace, if 1 to `max_chars` characters are left.
fn trimmed_name(raw: &str, max_chars: usize) -> Result<String, ValueError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if (1..=max_chars).contains(&chars) {
        Ok(trimmed.to_owned())
    } else {
        Err(ValueError::InvalidName)
    }
}

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProductName {
    type Error = ValueError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ProductName> for String {
    fn from(name: ProductName) -> Self {
        name.0
    }
}

/// A number of units from 1 to `MAX`: the one shape behind [`Quantity`] and
/// [`LineQuantity`], which differ only in their upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Units<const MAX: u32>(u32);

/// A number of units to reserve or restock, from 1 to 1,000,000.
pub type Quantity = Units<1_000_000>;

impl<const MAX: u32> Units<MAX> {
    /// Smallest quantity accepted.
    pub const MIN: u32 = 1;
    /// Largest quantity accepted.
    pub const MAX: u32 = MAX;

    /// Accepts `units` if it lies in `MIN..=MAX`.
    pub fn new(units: u32) -> Result<Self, ValueError> {
        if (Self::MIN..=Self::MAX).contains(&units) {
            Ok(Self(units))
        } else {
            Err(Self::out_of_range())
        }
    }

    /// Like [`Units::new`], for input that may be negative or larger than `u32`.
    pub fn parse(units: i64) -> Result<Self, ValueError> {
        u32::try_from(units)
            .map_err(|_| Self::out_of_range())
            .and_then(Self::new)
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }

    fn out_of_range() -> ValueError {
        ValueError::QuantityOutOfRange {
            min: Self::MIN,
            max: Self::MAX,
        }
    }
}

impl<const MAX: u32> fmt::Display for Units<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<const MAX: u32> TryFrom<i64> for Units<MAX> {
    type Error = ValueError;

    fn try_from(units: i64) -> Result<Self, Self::Error> {
        Self::parse(units)
    }
}

impl<const MAX: u32> From<Units<MAX>> for u32 {
    fn from(quantity: Units<MAX>) -> Self {
        quantity.0
    }
}

/// An amount of money in integer cents, never negative. Zero is a valid amount; rules
/// that need a positive price check for it themselves.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

impl Money {
    /// No money at all.
    pub const ZERO: Money = Money(0);

    /// Accepts `cents` if it is zero or more.
    pub fn from_cents(cents: i64) -> Result<Self, ValueError> {
        if cents >= 0 {
            Ok(Self(cents))
        } else {
            Err(ValueError::NegativeMoney)
        }
    }

    /// The amount in cents.
    pub fn cents(self) -> i64 {
        self.0
    }

    /// Whether the amount is more than zero.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The sum of two amounts, or `None` if it would overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The amount times `factor` (a unit price times a quantity), or `None` on overflow.
    pub fn checked_mul(self, factor: u32) -> Option<Money> {
        self.0.checked_mul(i64::from(factor)).map(Money)
    }
}

impl TryFrom<i64> for Money {
    type Error = ValueError;

    fn try_from(cents: i64) -> Result<Self, Self::Error> {
        Self::from_cents(cents)
    }
}

impl From<Money> for i64 {
    fn from(money: Money) -> Self {
        money.0
    }
}

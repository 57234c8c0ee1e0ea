//! The lines of an order: which SKUs a customer wants and how many of each.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Sku, ValueError};

#[cfg(test)]
mod tests;

/// How many units of one SKU an order line asks for, from 1 to 1,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct LineQuantity(u32);

impl LineQuantity {
    /// Smallest quantity accepted.
    pub const MIN: u32 = 1;
    /// Largest quantity accepted.
    pub const MAX: u32 = 1_000;

    /// Accepts `units` if it lies in `MIN..=MAX`.
    pub fn new(units: u32) -> Result<Self, ValueError> {
        if (Self::MIN..=Self::MAX).contains(&units) {
            Ok(Self(units))
        } else {
            Err(Self::out_of_range())
        }
    }

    /// Like [`LineQuantity::new`], for input that may be negative or larger than `u32`.
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

impl fmt::Display for LineQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<i64> for LineQuantity {
    type Error = ValueError;

    fn try_from(units: i64) -> Result<Self, Self::Error> {
        Self::parse(units)
    }
}

impl From<LineQuantity> for u32 {
    fn from(quantity: LineQuantity) -> Self {
        quantity.0
    }
}

/// One line of an order: a SKU and the units wanted. Both parts are already valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product wanted.
    pub sku: Sku,
    /// Units wanted.
    pub quantity: LineQuantity,
}

/// The lines of one order: 1 to 50 of them, each SKU on at most one line, in the
/// order the customer gave them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<OrderLine>", into = "Vec<OrderLine>")]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    /// Most lines one order may have.
    pub const MAX_LINES: usize = 50;

    /// Accepts `lines` if there are 1 to [`OrderLines::MAX_LINES`] of them and no SKU repeats.
    pub fn new(lines: Vec<OrderLine>) -> Result<Self, ValueError> {
        if lines.is_empty() {
            return Err(ValueError::TooFewLines);
        }
        if lines.len() > Self::MAX_LINES {
            return Err(ValueError::TooManyLines {
                max: Self::MAX_LINES,
            });
        }
        let mut seen = BTreeSet::new();
        if let Some(repeated) = lines.iter().find(|line| !seen.insert(&line.sku)) {
            return Err(ValueError::RepeatedSku {
                sku: repeated.sku.clone(),
            });
        }
        Ok(Self(lines))
    }

    /// The lines, in the order given.
    pub fn as_slice(&self) -> &[OrderLine] {
        &self.0
    }

    /// Iterates over the lines in the order given.
    pub fn iter(&self) -> std::slice::Iter<'_, OrderLine> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a OrderLines {
    type Item = &'a OrderLine;
    type IntoIter = std::slice::Iter<'a, OrderLine>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl TryFrom<Vec<OrderLine>> for OrderLines {
    type Error = ValueError;

    fn try_from(lines: Vec<OrderLine>) -> Result<Self, Self::Error> {
        Self::new(lines)
    }
}

impl From<OrderLines> for Vec<OrderLine> {
    fn from(lines: OrderLines) -> Self {
        lines.0
    }
}

//! The lines of an order: which SKUs a customer wants and how many of each.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Sku, ValueError};

#[cfg(test)]
mod tests;

/// How many units of one SKU an order line asks for, from 1 to 1,000.
pub type LineQuantity = super::Units<1_000>;

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

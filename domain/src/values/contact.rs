//! Values that describe a customer: how to address them and how to reach them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{trimmed_name, ValueError};

#[cfg(test)]
mod tests;

/// A person's name as they give it: trimmed, 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
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

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PersonName {
    type Error = ValueError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<PersonName> for String {
    fn from(name: PersonName) -> Self {
        name.0
    }
}

/// An email address, trimmed and lower-cased: one `@` after a non-empty local part, then
/// a domain of at least two non-empty dot-separated labels, with no whitespace or control
/// characters, 3 to 254 characters in all. Nothing checks that mail can be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Shortest address accepted, in characters.
    pub const MIN_CHARS: usize = 3;
    /// Longest address accepted, in characters, as SMTP allows.
    pub const MAX_CHARS: usize = 254;

    /// Trims and lower-cases `raw`, then checks the result's shape.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let email = raw.trim().to_lowercase();
        if is_well_formed_email(&email) {
            Ok(Self(email))
        } else {
            Err(ValueError::InvalidEmail)
        }
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_well_formed_email(email: &str) -> bool {
    let chars = email.chars().count();
    if !(Email::MIN_CHARS..=Email::MAX_CHARS).contains(&chars)
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && domain.split('.').all(|label| !label.is_empty())
        }
        None => false,
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

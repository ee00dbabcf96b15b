//! The one scope type: parses RFC 6749 §3.3 strings and JSON arrays alike.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Why a scope value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A scope token is empty (two spaces in a row, or a leading or trailing space).
    #[error("empty scope token")]
    EmptyToken,
    /// A scope token holds a character outside RFC 6749 §3.3 `scope-token`.
    #[error("scope token contains a character RFC 6749 §3.3 forbids")]
    InvalidCharacter,
    /// The JSON value is neither a string nor an array of strings.
    #[error("scope must be a space-separated string or an array of strings")]
    WrongType,
}

/// A set of scope tokens. Ordered, so its text form is stable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<String>);

fn check_token(token: &str) -> Result<(), ScopeError> {
    if token.is_empty() {
        return Err(ScopeError::EmptyToken);
    }
    // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if token
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    {
        Ok(())
    } else {
        Err(ScopeError::InvalidCharacter)
    }
}

impl ScopeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string. The empty string is the empty set.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        if text.is_empty() {
            return Ok(Self::new());
        }
        Self::from_tokens(text.split(' '))
    }

    /// Builds a set from individual tokens, validating each.
    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for token in tokens {
            let token = token.as_ref();
            check_token(token)?;
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    /// Reads a claim value that is either a space-delimited string (RFC 8693 `scope`)
    /// or an array of strings (ERP.net's `scope`, and `scp`).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ScopeError> {
        match value {
            serde_json::Value::String(text) => Self::parse(text),
            serde_json::Value::Array(items) => {
                let mut tokens = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        serde_json::Value::String(token) => tokens.push(token.as_str()),
                        _ => return Err(ScopeError::WrongType),
                    }
                }
                Self::from_tokens(tokens)
            }
            _ => Err(ScopeError::WrongType),
        }
    }

    /// Whether `token` is granted.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether every scope in `required` is granted by `self`.
    pub fn contains_all(&self, required: &ScopeSet) -> bool {
        required.0.is_subset(&self.0)
    }

    /// The scopes of `required` that `self` lacks.
    pub fn missing_from(&self, required: &ScopeSet) -> ScopeSet {
        ScopeSet(required.0.difference(&self.0).cloned().collect())
    }

    /// Adds one token.
    pub fn insert(&mut self, token: &str) -> Result<(), ScopeError> {
        check_token(token)?;
        self.0.insert(token.to_owned());
        Ok(())
    }

    /// Removes one token; returns whether it was present.
    pub fn remove(&mut self, token: &str) -> bool {
        self.0.remove(token)
    }

    /// Distinct scope tokens, duplicates counted once.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

/// Serialises as the RFC 6749 space-delimited string.
impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Accepts a space-delimited string or an array of strings.
impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopeVisitor;
        impl<'de> Visitor<'de> for ScopeVisitor {
            type Value = ScopeSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a space-separated scope string or an array of scope strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScopeSet, E> {
                ScopeSet::parse(v).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScopeSet, A::Error> {
                let mut set = ScopeSet::new();
                while let Some(token) = seq.next_element::<String>()? {
                    set.insert(&token).map_err(de::Error::custom)?;
                }
                Ok(set)
            }
        }
        deserializer.deserialize_any(ScopeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_and_array_forms_are_the_same_set() {
        let a = ScopeSet::parse("read update").unwrap();
        let b = ScopeSet::from_json(&json!(["update", "read"])).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "read update");
    }

    #[test]
    fn containment_and_missing() {
        let granted = ScopeSet::parse("read update").unwrap();
        let need = ScopeSet::parse("read sec").unwrap();
        assert!(!granted.contains_all(&need));
        assert_eq!(granted.missing_from(&need).to_string(), "sec");
        assert!(granted.contains_all(&ScopeSet::parse("read").unwrap()));
        assert!(granted.contains_all(&ScopeSet::new()));
    }

    #[test]
    fn scopes_are_case_sensitive() {
        let granted = ScopeSet::parse("Read").unwrap();
        assert!(!granted.contains("read"));
    }

    #[test]
    fn rejects_bad_tokens_and_types() {
        assert_eq!(ScopeSet::parse("read  update"), Err(ScopeError::EmptyToken));
        assert_eq!(ScopeSet::parse(" read"), Err(ScopeError::EmptyToken));
        assert_eq!(ScopeSet::parse("re\"ad"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("réad"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::from_json(&json!(42)), Err(ScopeError::WrongType));
        assert_eq!(
            ScopeSet::from_json(&json!(["read", 1])),
            Err(ScopeError::WrongType)
        );
        assert_eq!(
            ScopeSet::from_json(&json!({"read": true})),
            Err(ScopeError::WrongType)
        );
    }

    #[test]
    fn serde_round_trip() {
        let set: ScopeSet = serde_json::from_str(r#"["read","update"]"#).unwrap();
        assert_eq!(serde_json::to_string(&set).unwrap(), r#""read update""#);
        let again: ScopeSet = serde_json::from_str(r#""read update""#).unwrap();
        assert_eq!(set, again);
    }
}

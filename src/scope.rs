//! The one scope type: parses RFC 6749 §3.3 strings and JSON arrays alike.

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

/// A set of scope tokens, held as its canonical text: the distinct tokens
/// sorted and joined by single spaces, in one allocation (a cached verdict
/// keeps one per token, and the identity header is this text). Equal sets
/// have equal text, so equality and hashing are the text's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Box<str>);

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
        let tokens: Vec<S> = tokens.into_iter().collect();
        let mut sorted = Vec::with_capacity(tokens.len());
        for token in &tokens {
            let token = token.as_ref();
            check_token(token)?;
            sorted.push(token);
        }
        Ok(Self::from_checked(sorted))
    }

    /// The set of already-checked tokens.
    fn from_checked(mut tokens: Vec<&str>) -> Self {
        tokens.sort_unstable();
        tokens.dedup();
        ScopeSet(tokens.join(" ").into_boxed_str())
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
        self.iter().any(|t| t == token)
    }

    /// Whether every scope in `required` is granted by `self`: one merge
    /// pass over both sorted lists.
    pub fn contains_all(&self, required: &ScopeSet) -> bool {
        let mut granted = self.iter();
        required
            .iter()
            .all(|need| granted.by_ref().any(|have| have == need))
    }

    /// The scopes of `required` that `self` lacks.
    pub fn missing_from(&self, required: &ScopeSet) -> ScopeSet {
        Self::from_checked(required.iter().filter(|t| !self.contains(t)).collect())
    }

    /// Adds one token.
    pub fn insert(&mut self, token: &str) -> Result<(), ScopeError> {
        check_token(token)?;
        if !self.contains(token) {
            let mut tokens: Vec<&str> = self.iter().collect();
            tokens.push(token);
            *self = Self::from_checked(tokens);
        }
        Ok(())
    }

    /// Removes one token; returns whether it was present.
    pub fn remove(&mut self, token: &str) -> bool {
        if !self.contains(token) {
            return false;
        }
        *self = Self::from_checked(self.iter().filter(|t| *t != token).collect());
        true
    }

    /// Distinct scope tokens, duplicates counted once.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|t| !t.is_empty())
    }

    /// The canonical text: what [`fmt::Display`] writes, without copying.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
        assert!(!ScopeSet::new().contains_all(&need));
        // Sorted merge: a required scope that sorts between granted ones.
        let wide = ScopeSet::parse("a c e").unwrap();
        assert!(!wide.contains_all(&ScopeSet::parse("a b").unwrap()));
        assert!(!wide.contains_all(&ScopeSet::parse("c d").unwrap()));
        assert!(wide.contains_all(&ScopeSet::parse("a e").unwrap()));
        assert!(!wide.contains_all(&ScopeSet::parse("e f").unwrap()));
    }

    #[test]
    fn duplicates_collapse_and_edits_keep_the_text_canonical() {
        let mut set = ScopeSet::parse("write read write").unwrap();
        assert_eq!(set.as_str(), "read write");
        assert_eq!(set.len(), 2);
        set.insert("admin").unwrap();
        set.insert("read").unwrap();
        assert_eq!(set.to_string(), "admin read write");
        assert!(set.remove("read"));
        assert!(!set.remove("read"));
        assert_eq!(set, ScopeSet::parse("write admin").unwrap());
        assert!(set.contains("admin") && !set.contains("adm"));
        assert_eq!(set.insert("bad scope"), Err(ScopeError::InvalidCharacter));
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

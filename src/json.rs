//! Bounded, strict JSON for untrusted input: depth and size are capped before
//! parsing, and duplicate member names are refused (RFC 7515 §5.2, RFC 7519 §7.2).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why untrusted JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The document is larger than allowed.
    #[error("JSON document exceeds {limit} bytes")]
    TooLarge {
        /// The byte limit in force.
        limit: usize,
    },
    /// Objects and arrays nest deeper than allowed.
    #[error("JSON nesting exceeds depth {limit}")]
    TooDeep {
        /// The depth limit in force.
        limit: usize,
    },
    /// An object repeats a member name.
    #[error("duplicate JSON member name")]
    DuplicateMember,
    /// The top-level value is not an object.
    #[error("JSON document is not an object")]
    NotAnObject,
    /// Not valid JSON (or not valid UTF-8).
    #[error("malformed JSON")]
    Syntax,
}

const DUPLICATE_MARKER: &str = "erpgate:duplicate-member";

/// Limits applied to one untrusted JSON document.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimits {
    /// Maximum size in bytes.
    pub max_bytes: usize,
    /// Maximum nesting of objects and arrays; the top-level object is depth 1.
    pub max_depth: usize,
}

/// Nesting depth of a JSON text, counted outside strings. Runs before any
/// allocation so a deeply nested document costs one linear scan.
fn nesting_depth(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses an untrusted JSON object under `limits`.
pub fn parse_object(bytes: &[u8], limits: JsonLimits) -> Result<Map<String, Value>, JsonError> {
    match parse_value(bytes, limits)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// Parses an untrusted JSON value under `limits`.
pub fn parse_value(bytes: &[u8], limits: JsonLimits) -> Result<Value, JsonError> {
    if bytes.len() > limits.max_bytes {
        return Err(JsonError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    if nesting_depth(bytes) > limits.max_depth {
        return Err(JsonError::TooDeep {
            limit: limits.max_depth,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(|_| JsonError::Syntax)?;
    Ok(value)
}

fn classify(err: serde_json::Error) -> JsonError {
    if err.to_string().starts_with(DUPLICATE_MARKER) {
        JsonError::DuplicateMember
    } else {
        JsonError::Syntax
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE_MARKER));
            }
            let value = access.next_value_seed(StrictSeed)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Strict base64url (RFC 7515 §2): unpadded, URL alphabet, canonical trailing bits.
pub fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Unpadded base64url encoding.
pub fn encode_b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Deserializes trusted configuration (a policy, the filter's plugin
/// configuration); on a syntax error, the path of the offending field (or
/// `(document)`) and serde's message.
///
/// Native builds, and so `erpgate policy check`, track the path with
/// `serde_path_to_error`. The wasm artifacts do not: the tracking wraps
/// every deserializer and was an eighth of the filter's code. There the
/// message still names the field (`unknown field \`x\``) with its line and
/// column, and the semantic checks that follow name their field paths as
/// everywhere.
pub fn from_slice_with_path<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, (String, String)> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "(document)".into()
            } else {
                path
            };
            (path, e.into_inner().to_string())
        })
    }
    #[cfg(target_arch = "wasm32")]
    {
        serde_json::from_slice(bytes).map_err(|e| ("(document)".to_owned(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: JsonLimits = JsonLimits {
        max_bytes: 1024,
        max_depth: 4,
    };

    #[test]
    fn accepts_plain_object() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x"],"c":{"d":1.5}}"#, LIMITS).unwrap();
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#, LIMITS),
            Err(JsonError::DuplicateMember)
        );
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":1}}"#, LIMITS),
            Err(JsonError::DuplicateMember)
        );
    }

    #[test]
    fn refuses_depth_size_and_shape() {
        assert_eq!(
            parse_object(br#"{"a":[[[[1]]]]}"#, LIMITS),
            Err(JsonError::TooDeep { limit: 4 })
        );
        // brackets inside strings do not count
        assert!(parse_object(br#"{"a":"[[[[[[[["}"#, LIMITS).is_ok());
        assert_eq!(
            parse_object(&[b' '; 2000], LIMITS),
            Err(JsonError::TooLarge { limit: 1024 })
        );
        assert_eq!(parse_object(b"[1]", LIMITS), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"{\"a\":1} x", LIMITS), Err(JsonError::Syntax));
        assert_eq!(
            parse_object(b"{\"a\":\xff}", LIMITS),
            Err(JsonError::Syntax)
        );
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(decode_b64url("AQID"), Some(vec![1, 2, 3]));
        assert_eq!(decode_b64url("AQI"), Some(vec![1, 2]));
        assert_eq!(decode_b64url("AQI="), None, "padding refused");
        assert_eq!(
            decode_b64url("AQJ"),
            None,
            "non-canonical trailing bits refused"
        );
        assert_eq!(decode_b64url("+/8"), None, "standard alphabet refused");
        assert_eq!(decode_b64url("AQ ID"), None);
    }
}

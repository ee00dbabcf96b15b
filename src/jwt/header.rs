//! The JOSE header: `alg` from a closed list, `kid` bounded, `typ`, and the
//! members that are refused outright (`crit`, key references, nesting).

use serde_json::{Map, Value};

use super::TokenError;
use crate::keys::{self, Algorithm};

/// The parts of a JOSE header that matter after the refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The declared algorithm; it must equal the key's.
    pub alg: Algorithm,
    /// Which of the issuer's keys signed it; optional when there is one key.
    pub kid: Option<String>,
    /// The declared type, e.g. `at+jwt`.
    pub typ: Option<String>,
}

/// Checks a header object member by member.
pub fn parse_header(map: &Map<String, Value>) -> Result<Header, TokenError> {
    let alg = match map.get("alg") {
        Some(Value::String(name)) => {
            if name.trim().eq_ignore_ascii_case("none") {
                return Err(TokenError::AlgNone);
            }
            Algorithm::from_name(name).ok_or(TokenError::UnsupportedAlgorithm)?
        }
        _ => return Err(TokenError::UnsupportedAlgorithm),
    };
    // RFC 7515 §4.1.11: we implement no extension, so any `crit` is refused;
    // `b64` (RFC 7797) changes what is signed and is refused with it.
    if map.contains_key("crit") || map.contains_key("b64") {
        return Err(TokenError::UnknownCritical);
    }
    // RFC 8725 §3.10: keys come from configuration only.
    if ["jku", "jwk", "x5u", "x5c"]
        .iter()
        .any(|m| map.contains_key(*m))
    {
        return Err(TokenError::KeyReferenceHeader);
    }
    // JWE members: a JWS with them is a confused or hostile token.
    if map.contains_key("enc") || map.contains_key("zip") {
        return Err(TokenError::Malformed);
    }
    match map.get("cty") {
        None => {}
        Some(Value::String(cty)) if !cty.eq_ignore_ascii_case("jwt") => {}
        Some(_) => return Err(TokenError::NestedToken),
    }
    let kid = match map.get("kid") {
        None => None,
        Some(Value::String(kid)) if keys::kid_is_sane(kid) => Some(kid.clone()),
        Some(_) => return Err(TokenError::InvalidKid),
    };
    let typ = match map.get("typ") {
        None => None,
        Some(Value::String(typ)) => Some(typ.clone()),
        Some(_) => return Err(TokenError::WrongType),
    };
    Ok(Header { alg, kid, typ })
}

/// Whether a declared `typ` satisfies a required one. Media types compare
/// case-insensitively, and the `application/` prefix may be omitted (RFC 7515 §4.1.9).
pub fn typ_matches(declared: Option<&str>, required: &str) -> bool {
    let strip = |t: &str| {
        let lower = t.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    };
    declared.is_some_and(|d| strip(d) == strip(required))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Header, TokenError> {
        match v {
            Value::Object(m) => parse_header(&m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn refusals() {
        for none in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(parse(json!({"alg": none})), Err(TokenError::AlgNone));
        }
        assert_eq!(
            parse(json!({"alg": "rs256"})),
            Err(TokenError::UnsupportedAlgorithm)
        );
        assert_eq!(
            parse(json!({"alg": 1})),
            Err(TokenError::UnsupportedAlgorithm)
        );
        assert_eq!(parse(json!({})), Err(TokenError::UnsupportedAlgorithm));
        assert_eq!(
            parse(json!({"alg": "RS256", "crit": ["exp"], "exp": 1})),
            Err(TokenError::UnknownCritical)
        );
        assert_eq!(
            parse(json!({"alg": "RS256", "jku": "https://x"})),
            Err(TokenError::KeyReferenceHeader)
        );
        assert_eq!(
            parse(json!({"alg": "RS256", "cty": "JWT"})),
            Err(TokenError::NestedToken)
        );
        assert_eq!(
            parse(json!({"alg": "RS256", "kid": "a\nb"})),
            Err(TokenError::InvalidKid)
        );
        assert_eq!(
            parse(json!({"alg": "RS256", "kid": 7})),
            Err(TokenError::InvalidKid)
        );
    }

    #[test]
    fn typ_comparison() {
        assert!(typ_matches(Some("at+jwt"), "at+jwt"));
        assert!(typ_matches(Some("application/AT+JWT"), "at+jwt"));
        assert!(!typ_matches(Some("JWT"), "at+jwt"));
        assert!(!typ_matches(None, "at+jwt"));
    }
}

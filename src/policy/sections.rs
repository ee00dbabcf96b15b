//! Fingerprints of the parts of a policy document that make a verdict what
//! it is. A reloaded policy keeps what an engine remembers (keys, cached
//! verdicts, the revocation cursor) for every part whose fingerprint did not
//! change: routes, identity headers and the rest are applied on every
//! request, cached or not, so editing them drops nothing.

use serde_json::Value;

use crate::cache::TokenHash;

/// What a reload compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sections {
    /// One per issuer, in the policy's order: its whole definition.
    pub issuers: Vec<String>,
    /// What a JWT's verdict depends on: every issuer, the JWT cache and
    /// the limits.
    pub jwt_verdicts: String,
    /// What an introspection verdict depends on: the introspection
    /// settings, the issuers (whose names vouch for a reply) and the limits.
    pub reference_verdicts: String,
    /// The revocation feed's settings.
    pub feed: String,
    /// Everything a verdict depends on; namespaces a shared cache.
    pub verdicts: String,
}

fn hash(parts: &[&Value]) -> String {
    let text: Vec<String> = parts.iter().map(|v| v.to_string()).collect();
    let digest = TokenHash::of(&text.join("\u{0}"));
    hex::encode(digest.0.get(..8).unwrap_or_default())
}

impl Sections {
    /// The fingerprints of a policy document that compiled.
    pub fn of(document: &Value) -> Self {
        let get = |name: &str| document.get(name).unwrap_or(&Value::Null);
        let (issuers, jwt_cache, limits) = (get("issuers"), get("jwt_cache"), get("limits"));
        let (introspection, feed) = (get("introspection"), get("revocation_feed"));
        Sections {
            issuers: issuers
                .as_array()
                .map(|list| list.iter().map(|i| hash(&[i])).collect())
                .unwrap_or_default(),
            jwt_verdicts: hash(&[issuers, jwt_cache, limits]),
            reference_verdicts: hash(&[introspection, issuers, limits]),
            feed: hash(&[feed]),
            verdicts: hash(&[issuers, jwt_cache, limits, introspection]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_do_not_count_and_issuers_count_one_by_one() {
        let doc: Value = serde_json::from_str(include_str!("../../policies/erpnet.json")).unwrap();
        let base = Sections::of(&doc);
        let mut routes = doc.clone();
        routes["routes"].as_array_mut().unwrap().pop();
        routes["identity_headers"] = serde_json::json!({});
        assert_eq!(
            Sections::of(&routes),
            base,
            "routes and headers are per request"
        );
        let mut audience = doc.clone();
        audience["issuers"][0]["audiences"] = serde_json::json!(["other"]);
        let changed = Sections::of(&audience);
        assert_ne!(changed.issuers, base.issuers);
        assert_ne!(changed.jwt_verdicts, base.jwt_verdicts);
        assert_eq!(changed.feed, base.feed);
        let mut feed = doc;
        feed["revocation_feed"]["poll_interval_ms"] = 1000.into();
        let changed = Sections::of(&feed);
        assert_ne!(changed.feed, base.feed);
        assert_eq!(changed.jwt_verdicts, base.jwt_verdicts);
    }
}

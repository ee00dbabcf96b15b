//! Fingerprints of the parts of a policy document that make a verdict what
//! it is. A reloaded policy keeps what an engine remembers (keys, cached
//! verdicts, the revocation cursor) for every part whose fingerprint did not
//! change: routes and the rest are applied on every request, cached or
//! not, so editing them drops nothing. Cached verdicts hold the identity
//! headers' names of the policy they were made under, so renaming one drops
//! the local verdict caches (not the shared cache, which holds principals).

use serde_json::Value;

use crate::cache::TokenHash;

/// What a reload compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sections {
    /// One per issuer, in the policy's order: its whole definition.
    pub issuers: Vec<String>,
    /// What a cached JWT verdict depends on: every issuer, the JWT cache,
    /// the limits and the identity headers' names.
    pub jwt_verdicts: String,
    /// What an introspection verdict depends on: the introspection
    /// settings, the issuers (whose names vouch for a reply), the limits
    /// and the identity headers' names.
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
        let headers = get("identity_headers");
        Sections {
            issuers: issuers
                .as_array()
                .map(|list| list.iter().map(|i| hash(&[i])).collect())
                .unwrap_or_default(),
            jwt_verdicts: hash(&[issuers, jwt_cache, limits, headers]),
            reference_verdicts: hash(&[introspection, issuers, limits, headers]),
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
        assert_eq!(Sections::of(&routes), base, "routes are per request");
        let mut headers = doc.clone();
        headers["identity_headers"] = serde_json::json!({"subject": "x-who"});
        let renamed = Sections::of(&headers);
        assert_ne!(renamed.jwt_verdicts, base.jwt_verdicts, "cached headers");
        assert_ne!(renamed.reference_verdicts, base.reference_verdicts);
        assert_eq!(renamed.verdicts, base.verdicts, "shared principals stay");
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

//! The revocation feed: how the host tells edge caches that tokens died, so they
//! evict within one poll interval instead of waiting out a TTL.
//!
//! Wire format. The edge sends `GET {path}?cursor={cursor}` (an empty cursor the
//! first time) with the same client authentication as introspection. The reply:
//!
//! ```json
//! {
//!   "cursor": "1842",
//!   "has_more": false,
//!   "events": [
//!     {"kind": "token_sha256", "value": "<64 lowercase hex>", "expires_at": 1766508747},
//!     {"kind": "jti", "value": "8D0B705573A1A98FDBADFF0CD7F7EEB4", "expires_at": 1766508747},
//!     {"kind": "sid", "value": "D1FFEDFE4CB32300D26C265B9BD374FB", "expires_at": 1766508747}
//!   ]
//! }
//! ```
//!
//! - `cursor` is opaque; the next poll sends it back and receives only newer events.
//! - `token_sha256` is SHA-256 of a reference token (the host stores nothing else).
//! - `jti` revokes one JWT access token; `sid` revokes every token of an identity
//!   session (logout).
//! - `expires_at` (Unix seconds) is when the revoked token would have expired
//!   anyway; the edge forgets the event after it. The host keeps events until
//!   then, so a fresh edge that polls from an empty cursor learns all live ones.
//! - `has_more: true` asks the edge to poll again at once.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::cache::TokenHash;
use crate::json::{self, JsonLimits};

/// What a revocation event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    /// SHA-256 (hex) of a reference token.
    TokenSha256,
    /// A JWT's `jti`.
    Jti,
    /// An identity session id.
    Sid,
}

/// One feed event: a reference token, a JWT, or every token of an identity
/// session, revoked; the edge remembers it until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationEvent {
    /// How `value` names the revoked tokens.
    pub kind: RevocationKind,
    /// The hash, `jti` or `sid`.
    pub value: String,
    /// When the event may be forgotten, Unix seconds.
    pub expires_at: u64,
}

/// One page of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationFeedPage {
    /// Opaque position to resume from.
    pub cursor: String,
    /// Events newer than the cursor that was sent.
    pub events: Vec<RevocationEvent>,
    /// Whether more events are waiting.
    #[serde(default)]
    pub has_more: bool,
}

/// Why a feed page was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// HTTP status other than 200.
    #[error("revocation feed answered HTTP {0}")]
    Status(u16),
    /// Not a bounded JSON object.
    #[error("revocation feed body is not bounded JSON: {0}")]
    Json(#[from] json::JsonError),
    /// JSON that is not a feed page: a missing, mistyped or unknown member, or
    /// a `token_sha256` value that is not 64 hex characters.
    #[error("revocation feed body has the wrong shape: {0}")]
    Shape(String),
}

/// Largest feed page accepted.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Most events remembered per kind; the oldest-expiring are forgotten first.
pub const MAX_REMEMBERED: usize = 100_000;

/// Parses a feed page strictly.
pub fn parse_page(status: u16, body: &[u8]) -> Result<RevocationFeedPage, FeedError> {
    if status != 200 {
        return Err(FeedError::Status(status));
    }
    let value = json::parse_value(
        body,
        JsonLimits {
            max_bytes: MAX_PAGE_BYTES,
            max_depth: 4,
        },
    )?;
    let page: RevocationFeedPage =
        serde_json::from_value(value).map_err(|e| FeedError::Shape(e.to_string()))?;
    for event in &page.events {
        if event.kind == RevocationKind::TokenSha256 && TokenHash::from_hex(&event.value).is_none()
        {
            return Err(FeedError::Shape(
                "token_sha256 value is not 64 hex characters".into(),
            ));
        }
    }
    Ok(page)
}

/// The query path for the next poll.
pub fn poll_path(path: &str, cursor: Option<&str>) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("cursor", cursor.unwrap_or(""))
        .finish();
    format!("{path}?{query}")
}

/// What the edge remembers of the feed.
#[derive(Debug, Default)]
pub struct RevocationState {
    /// Where the next poll resumes.
    pub cursor: Option<String>,
    jti: HashMap<String, u64>,
    sid: HashMap<String, u64>,
    tokens: HashMap<TokenHash, u64>,
}

fn remember<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, u64>,
    key: K,
    until: u64,
    now_s: u64,
) {
    if map.len() >= MAX_REMEMBERED {
        map.retain(|_, until| *until > now_s);
    }
    if map.len() >= MAX_REMEMBERED {
        // Still full of live events: forget the one expiring soonest.
        if let Some(victim) = map.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone()) {
            map.remove(&victim);
        }
    }
    map.insert(key, until);
}

impl RevocationState {
    /// Records one event. Returns the token hash to evict, for `token_sha256`.
    pub fn record(&mut self, event: &RevocationEvent, now_s: u64) -> Option<TokenHash> {
        if event.expires_at <= now_s {
            return None;
        }
        match event.kind {
            RevocationKind::Jti => {
                remember(&mut self.jti, event.value.clone(), event.expires_at, now_s)
            }
            RevocationKind::Sid => {
                remember(&mut self.sid, event.value.clone(), event.expires_at, now_s)
            }
            RevocationKind::TokenSha256 => {
                let hash = TokenHash::from_hex(&event.value)?;
                remember(&mut self.tokens, hash, event.expires_at, now_s);
                return Some(hash);
            }
        }
        None
    }

    /// Whether a JWT with this `jti` / `sid` is revoked.
    pub fn jwt_revoked(&self, jti: Option<&str>, sid: Option<&str>, now_s: u64) -> bool {
        let live = |m: &HashMap<String, u64>, k: Option<&str>| {
            k.and_then(|k| m.get(k)).is_some_and(|u| *u > now_s)
        };
        live(&self.jti, jti) || live(&self.sid, sid)
    }

    /// Whether a reference token with this hash is revoked.
    pub fn token_revoked(&self, hash: &TokenHash, now_s: u64) -> bool {
        self.tokens.get(hash).is_some_and(|u| *u > now_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_records() {
        let h = TokenHash::of("enrt_X");
        let body = format!(
            r#"{{"cursor":"7","events":[{{"kind":"token_sha256","value":"{}","expires_at":100}},{{"kind":"jti","value":"J1","expires_at":100}}]}}"#,
            h.to_hex()
        );
        let page = parse_page(200, body.as_bytes()).unwrap();
        let mut state = RevocationState::default();
        assert_eq!(state.record(&page.events[0], 50), Some(h));
        assert_eq!(state.record(&page.events[1], 50), None);
        assert!(state.token_revoked(&h, 50));
        assert!(state.jwt_revoked(Some("J1"), None, 50));
        assert!(
            !state.jwt_revoked(Some("J1"), None, 100),
            "forgotten after expiry"
        );
        assert!(!state.jwt_revoked(Some("J2"), Some("S"), 50));
    }

    #[test]
    fn refuses_bad_pages() {
        assert_eq!(parse_page(401, b""), Err(FeedError::Status(401)));
        assert!(matches!(parse_page(200, br#"{"cursor":"1","events":[{"kind":"token_sha256","value":"xyz","expires_at":1}]}"#), Err(FeedError::Shape(_))));
        assert!(matches!(
            parse_page(200, br#"{"cursor":"1","events":[],"extra":1}"#),
            Err(FeedError::Shape(_))
        ));
        assert_eq!(poll_path("/feed", None), "/feed?cursor=");
        assert_eq!(poll_path("/feed", Some("a b")), "/feed?cursor=a+b");
    }
}

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
//!     {"kind": "sid", "value": "D1FFEDFE4CB32300D26C265B9BD374FB", "expires_at": 1766508747},
//!     {"kind": "client_id", "value": "PK", "issued_before": 1766505149, "expires_at": 1766508749},
//!     {"kind": "sub", "value": "alice", "issued_before": 1766505149, "expires_at": 1766508749}
//!   ]
//! }
//! ```
//!
//! - `cursor` is opaque; the next poll sends it back and receives only newer events.
//! - `token_sha256` is SHA-256 of a reference token (the host stores nothing else).
//! - `jti` revokes one JWT access token; `sid` revokes every token of an identity
//!   session (logout).
//! - `client_id` and `sub` void every verdict about a trusted application's
//!   tokens, or a user's (or SystemUser's), that was vouched for before
//!   `issued_before` (Unix seconds): the app was disabled, removed or
//!   narrowed, the user demoted or their password changed. A JWT vouched for
//!   before it (its `iat`) is refused; a cached introspection reply obtained
//!   before it is dropped and the token introspected again, so the reply
//!   reflects the change (a reference token that is still good keeps working).
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
    /// A trusted application (`client_id`): verdicts before `issued_before`.
    ClientId,
    /// A user or SystemUser login (the principal's subject): verdicts before
    /// `issued_before`.
    Sub,
}

impl RevocationKind {
    /// Whether events of this kind void verdicts vouched for before a time
    /// (and so carry `issued_before`), rather than name revoked tokens.
    pub fn voids_before(self) -> bool {
        matches!(self, RevocationKind::ClientId | RevocationKind::Sub)
    }
}

/// One feed event: a reference token, a JWT, or every token of an identity
/// session, revoked; the edge remembers it until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationEvent {
    /// How `value` names the revoked tokens.
    pub kind: RevocationKind,
    /// The hash, `jti`, `sid`, `client_id` or subject.
    pub value: String,
    /// For `client_id` and `sub` (and only them): verdicts vouched for before
    /// this time, Unix seconds, are void.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<u64>,
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
    /// JSON that is not a feed page: a missing, mistyped or unknown member, a
    /// `token_sha256` value that is not 64 hex characters, or `issued_before`
    /// missing from a `client_id` or `sub` event or present on another.
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
        if event.kind.voids_before() != event.issued_before.is_some() {
            return Err(FeedError::Shape(
                "issued_before belongs to client_id and sub events, and only to them".into(),
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
    jti: Remembered<String>,
    sid: Remembered<String>,
    tokens: Remembered<TokenHash>,
    clients: Remembered<String>,
    subjects: Remembered<String>,
}

/// A revocation remembered until `until`, for verdicts vouched for before
/// `before` (`u64::MAX` for kinds that name tokens: every verdict).
#[derive(Debug, Clone, Copy)]
struct Span {
    until: u64,
    before: u64,
}

impl Span {
    fn widen(&mut self, other: Span) {
        self.until = self.until.max(other.until);
        self.before = self.before.max(other.before);
    }

    fn covers(&self, vouched_at: u64, now_s: u64) -> bool {
        now_s < self.until && vouched_at < self.before
    }
}

/// The live revocations of one kind, by value, with their span; and, when an
/// event found the table full of live ones, a span in which every token that
/// could carry that kind is refused. A live revocation is never forgotten:
/// the table fails closed instead.
#[derive(Debug)]
struct Remembered<K> {
    live: HashMap<K, Span>,
    refuse_all: Span,
}

impl<K> Default for Remembered<K> {
    fn default() -> Self {
        Self {
            live: HashMap::new(),
            refuse_all: Span {
                until: 0,
                before: 0,
            },
        }
    }
}

impl<K: std::hash::Hash + Eq> Remembered<K> {
    /// Remembers `key` for `span`; false when the table was full of live
    /// revocations, and the whole kind is refused for `span` instead.
    fn remember(&mut self, key: K, span: Span, now_s: u64) -> bool {
        if self.live.len() >= MAX_REMEMBERED && !self.live.contains_key(&key) {
            self.live.retain(|_, s| s.until > now_s);
        }
        if self.live.len() >= MAX_REMEMBERED && !self.live.contains_key(&key) {
            self.refuse_all.widen(span);
            return false;
        }
        self.live.entry(key).or_insert(span).widen(span);
        true
    }

    /// Whether a verdict about `key` vouched for at `vouched_at` is revoked
    /// at `now_s`, or its whole kind is refused.
    fn revoked<Q>(&self, key: Option<&Q>, vouched_at: u64, now_s: u64) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        key.is_some_and(|k| {
            self.refuse_all.covers(vouched_at, now_s)
                || self
                    .live
                    .get(k)
                    .is_some_and(|s| s.covers(vouched_at, now_s))
        })
    }
}

impl RevocationState {
    /// Records one event: what it revoked, and whether it fit. An event that
    /// finds its kind's table full of live revocations does not push one
    /// out: every token of that kind is refused until it expires (fail
    /// closed), and `overflowed` says so.
    pub fn record(&mut self, event: &RevocationEvent, now_s: u64) -> Recorded {
        if event.expires_at <= now_s {
            return Recorded::default();
        }
        let span = Span {
            until: event.expires_at,
            before: event.issued_before.unwrap_or(u64::MAX),
        };
        let value = || event.value.clone();
        let overflowed = |fit: bool| Recorded {
            hash: None,
            overflowed: !fit,
        };
        match event.kind {
            RevocationKind::Jti => overflowed(self.jti.remember(value(), span, now_s)),
            RevocationKind::Sid => overflowed(self.sid.remember(value(), span, now_s)),
            RevocationKind::ClientId => overflowed(self.clients.remember(value(), span, now_s)),
            RevocationKind::Sub => overflowed(self.subjects.remember(value(), span, now_s)),
            RevocationKind::TokenSha256 => match TokenHash::from_hex(&event.value) {
                Some(hash) => Recorded {
                    hash: Some(hash),
                    overflowed: !self.tokens.remember(hash, span, now_s),
                },
                None => Recorded::default(),
            },
        }
    }

    /// Whether a JWT with this `jti` / `sid` is revoked (or its kind is
    /// refused while its table is over full).
    pub fn jwt_revoked(&self, jti: Option<&str>, sid: Option<&str>, now_s: u64) -> bool {
        self.jti.revoked(jti, 0, now_s) || self.sid.revoked(sid, 0, now_s)
    }

    /// Whether a verdict about a token of this app or subject, vouched for
    /// at `vouched_at` (a JWT's `iat`, an introspection reply's arrival),
    /// was voided by a `client_id` or `sub` event.
    pub fn voided(
        &self,
        client_id: Option<&str>,
        subject: &str,
        vouched_at: u64,
        now_s: u64,
    ) -> bool {
        self.clients.revoked(client_id, vouched_at, now_s)
            || self.subjects.revoked(Some(subject), vouched_at, now_s)
    }

    /// Whether a reference token with this hash is revoked (or every one is,
    /// while the table is over full).
    pub fn token_revoked(&self, hash: &TokenHash, now_s: u64) -> bool {
        self.tokens.revoked(Some(hash), 0, now_s)
    }
}

/// What recording one event did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The token hash to evict from the caches, for `token_sha256`.
    pub hash: Option<TokenHash>,
    /// The table was full of live revocations: the kind fails closed.
    pub overflowed: bool,
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
        assert_eq!(state.record(&page.events[0], 50).hash, Some(h));
        assert_eq!(state.record(&page.events[1], 50), Recorded::default());
        assert!(state.token_revoked(&h, 50));
        assert!(state.jwt_revoked(Some("J1"), None, 50));
        assert!(
            !state.jwt_revoked(Some("J1"), None, 100),
            "forgotten after expiry"
        );
        assert!(!state.jwt_revoked(Some("J2"), Some("S"), 50));
    }

    /// A live revocation is never forgotten. Before, the table dropped the
    /// soonest-expiring live event to make room, and its token worked again.
    #[test]
    fn a_full_table_fails_closed_for_its_kind_until_the_event_expires() {
        let mut state = RevocationState::default();
        let event = |value: String, expires_at: u64| RevocationEvent {
            kind: RevocationKind::Jti,
            value,
            issued_before: None,
            expires_at,
        };
        for i in 0..MAX_REMEMBERED {
            let recorded = state.record(&event(format!("J{i}"), 1_000 + i as u64), 10);
            assert!(!recorded.overflowed);
        }
        let over = state.record(&event("J-last".into(), 5_000), 10);
        assert!(over.overflowed, "counted");
        assert!(
            state.jwt_revoked(Some("J0"), None, 20),
            "the soonest still holds"
        );
        assert!(state.jwt_revoked(Some("J-last"), None, 20));
        assert!(
            state.jwt_revoked(Some("anyone"), None, 20),
            "every jti is refused while the table is over full"
        );
        assert!(
            !state.jwt_revoked(None, Some("S"), 20),
            "other kinds unaffected"
        );
        assert!(!state.token_revoked(&TokenHash::of("enrt_Y"), 20));
        // Once the overflowing event has expired, the kind works again, and
        // expired entries make room for new events.
        assert!(!state.jwt_revoked(Some("anyone"), None, 5_000));
        let later = state.record(&event("J-later".into(), 300_000), 200_000);
        assert!(!later.overflowed);
        assert!(state.jwt_revoked(Some("J-later"), None, 200_001));
    }

    /// An app or user change voids what was vouched for before it, and only
    /// that: a token minted (or a reply obtained) after it is good.
    #[test]
    fn client_and_subject_events_void_earlier_verdicts_only() {
        let body = br#"{"cursor":"9","events":[{"kind":"client_id","value":"PK","issued_before":100,"expires_at":500},{"kind":"sub","value":"alice","issued_before":200,"expires_at":500}]}"#;
        let page = parse_page(200, body).unwrap();
        let mut state = RevocationState::default();
        for event in &page.events {
            assert_eq!(state.record(event, 50), Recorded::default());
        }
        assert!(state.voided(Some("PK"), "bob", 99, 60));
        assert!(!state.voided(Some("PK"), "bob", 100, 60), "minted after");
        assert!(!state.voided(Some("OTHER"), "bob", 99, 60));
        assert!(!state.voided(None, "bob", 99, 60));
        assert!(state.voided(Some("OTHER"), "alice", 199, 60));
        assert!(!state.voided(Some("OTHER"), "alice", 200, 60));
        assert!(
            !state.voided(Some("PK"), "alice", 50, 500),
            "forgotten after expiry"
        );
        assert!(
            !state.jwt_revoked(Some("PK"), Some("alice"), 60),
            "other kinds"
        );
    }

    #[test]
    fn refuses_bad_pages() {
        assert_eq!(parse_page(401, b""), Err(FeedError::Status(401)));
        assert!(matches!(parse_page(200, br#"{"cursor":"1","events":[{"kind":"token_sha256","value":"xyz","expires_at":1}]}"#), Err(FeedError::Shape(_))));
        assert!(matches!(
            parse_page(200, br#"{"cursor":"1","events":[],"extra":1}"#),
            Err(FeedError::Shape(_))
        ));
        for bad in [
            r#"{"kind":"client_id","value":"PK","expires_at":1}"#,
            r#"{"kind":"sub","value":"alice","expires_at":1}"#,
            r#"{"kind":"jti","value":"J","issued_before":1,"expires_at":1}"#,
        ] {
            let page = format!(r#"{{"cursor":"1","events":[{bad}]}}"#);
            assert!(
                matches!(parse_page(200, page.as_bytes()), Err(FeedError::Shape(_))),
                "{bad}"
            );
        }
        assert_eq!(poll_path("/feed", None), "/feed?cursor=");
        assert_eq!(poll_path("/feed", Some("a b")), "/feed?cursor=a+b");
    }
}

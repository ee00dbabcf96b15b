//! Who a verified credential speaks for, in ERP.net's terms.

use serde::{Deserialize, Serialize};

use crate::scope::ScopeSet;

/// The kind of token behind a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A JWT issued to a user (authorization code flow).
    User,
    /// A JWT issued to a trusted application's SystemUser (client credentials).
    Service,
    /// A personal access token: a reference token acting as the user who made it.
    Pat,
    /// A service access token: a reference token acting as the app's SystemUser.
    Sat,
}

impl TokenKind {
    /// Every kind, in a stable order.
    pub const ALL: [TokenKind; 4] = [
        TokenKind::User,
        TokenKind::Service,
        TokenKind::Pat,
        TokenKind::Sat,
    ];

    /// The lowercase name used in policies, headers and introspection replies.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::User => "user",
            TokenKind::Service => "service",
            TokenKind::Pat => "pat",
            TokenKind::Sat => "sat",
        }
    }
}

/// The identity a request runs as, after verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// What kind of token proved it.
    pub kind: TokenKind,
    /// The ERP login: `sub` for user tokens and PATs, the SystemUser for service
    /// tokens and SATs.
    pub subject: Box<str>,
    /// The user's GUID (`id`, or `client_system_user_id`), when known.
    pub user_id: Option<Box<str>>,
    /// The trusted application (`client_id` = ApplicationUri).
    pub client_id: Option<Box<str>>,
    /// The database / tenant (`db` or `client_db`).
    pub db: Option<Box<str>>,
    /// Scopes the token grants (its `scope` claim or introspection member;
    /// empty when it has none): what routes that name scopes check.
    pub scopes: ScopeSet,
    /// The identity session (`sid`), for user tokens.
    pub sid: Option<Box<str>>,
    /// The token id (`jti`).
    pub jti: Option<Box<str>>,
    /// ERP.net's `is_admin` claim.
    pub is_admin: bool,
    /// ERP.net's `user_type` (or `client_system_user_type`).
    pub user_type: Option<Box<str>>,
    /// When the token stops being valid, Unix seconds.
    pub expires_at: u64,
    /// When the issuer last vouched for what this says, Unix seconds: a
    /// JWT's `iat` (0 without one), or when an introspection reply arrived.
    /// An app or user change voids what was vouched for before it.
    #[serde(default)]
    pub vouched_at: u64,
}

impl Principal {
    /// Whether every value that may become a header is free of control characters.
    /// A claim with CR or LF would otherwise smuggle headers upstream.
    pub fn is_header_safe(&self) -> bool {
        let fields = [
            Some(&*self.subject),
            self.user_id.as_deref(),
            self.client_id.as_deref(),
            self.db.as_deref(),
            self.sid.as_deref(),
            self.user_type.as_deref(),
        ];
        fields
            .into_iter()
            .flatten()
            .all(|v| !v.chars().any(char::is_control))
    }
}

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

/// The text fields of a principal, borrowed: what [`Principal::new`] packs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrincipalText<'a> {
    /// The ERP login: `sub` for user tokens and PATs, the SystemUser for
    /// service tokens and SATs.
    pub subject: &'a str,
    /// The user's GUID (`id`, or `client_system_user_id`), when known.
    pub user_id: Option<&'a str>,
    /// The trusted application (`client_id` = ApplicationUri).
    pub client_id: Option<&'a str>,
    /// The database / tenant (`db` or `client_db`).
    pub db: Option<&'a str>,
    /// The identity session (`sid`), for user tokens.
    pub sid: Option<&'a str>,
    /// The token id (`jti`).
    pub jti: Option<&'a str>,
    /// ERP.net's `user_type` (or `client_system_user_type`).
    pub user_type: Option<&'a str>,
    /// The RFC 7638 thumbprint of the DPoP key the token is bound to
    /// (`cnf.jkt`), for a sender-constrained token.
    pub jkt: Option<&'a str>,
}

impl<'a> PrincipalText<'a> {
    /// The eight fields in the one order every packed and binary form
    /// uses: subject, user_id, client_id, db, sid, jti, user_type, jkt.
    pub fn fields(&self) -> [Option<&'a str>; FIELDS] {
        [
            Some(self.subject),
            self.user_id,
            self.client_id,
            self.db,
            self.sid,
            self.jti,
            self.user_type,
            self.jkt,
        ]
    }

    /// The text from [`PrincipalText::fields`]' order; `None` without a
    /// subject.
    pub fn from_fields(fields: [Option<&'a str>; FIELDS]) -> Option<Self> {
        let [subject, user_id, client_id, db, sid, jti, user_type, jkt] = fields;
        Some(PrincipalText {
            subject: subject?,
            user_id,
            client_id,
            db,
            sid,
            jti,
            user_type,
            jkt,
        })
    }
}

/// How many text fields a principal has.
pub const FIELDS: usize = 8;

/// The text fields in one allocation: the texts one after another,
/// where each ends, and which are present. A cache keeps one principal per
/// token, and eight small allocations cost more than their text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Packed {
    text: Box<str>,
    ends: [u32; FIELDS],
    present: u8,
}

const SUBJECT: usize = 0;
const USER_ID: usize = 1;
const CLIENT_ID: usize = 2;
const DB: usize = 3;
const SID: usize = 4;
const JTI: usize = 5;
const USER_TYPE: usize = 6;
const JKT: usize = 7;

impl Packed {
    fn new(t: &PrincipalText<'_>) -> Self {
        let fields = t.fields();
        let mut text = String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum());
        let mut packed = Packed::default();
        for (i, field) in fields.iter().enumerate() {
            if let Some(field) = field {
                text.push_str(field);
                packed.present |= 1 << i;
            }
            // Token and reply size limits keep the text far below 4 GiB; a
            // length that did not fit would make `get` answer `None`.
            if let Some(end) = packed.ends.get_mut(i) {
                *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            }
        }
        packed.text = text.into_boxed_str();
        packed
    }

    fn get(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = match i.checked_sub(1) {
            Some(before) => *self.ends.get(before)?,
            None => 0,
        };
        let end = *self.ends.get(i)?;
        self.text.get(start as usize..end as usize)
    }
}

/// The identity a request runs as, after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What kind of token proved it.
    pub kind: TokenKind,
    texts: Packed,
    /// Scopes the token grants (its `scope` claim or introspection member;
    /// empty when it has none): what routes that name scopes check.
    pub scopes: ScopeSet,
    /// ERP.net's `is_admin` claim.
    pub is_admin: bool,
    /// When the token stops being valid, Unix seconds.
    pub expires_at: u64,
    /// When the issuer last vouched for what this says, Unix seconds: a
    /// JWT's `iat` (0 without one), or when an introspection reply arrived.
    /// An app or user change voids what was vouched for before it.
    pub vouched_at: u64,
}

/// The serialized form (the shared cache, the worker's principal): every
/// field by name, as before the text was packed.
#[derive(Serialize)]
struct Fields<'a> {
    kind: TokenKind,
    subject: &'a str,
    user_id: Option<&'a str>,
    client_id: Option<&'a str>,
    db: Option<&'a str>,
    scopes: &'a ScopeSet,
    sid: Option<&'a str>,
    jti: Option<&'a str>,
    is_admin: bool,
    user_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jkt: Option<&'a str>,
    expires_at: u64,
    vouched_at: u64,
}

#[derive(Deserialize)]
struct OwnedFields {
    kind: TokenKind,
    subject: String,
    user_id: Option<String>,
    client_id: Option<String>,
    db: Option<String>,
    scopes: ScopeSet,
    sid: Option<String>,
    jti: Option<String>,
    is_admin: bool,
    user_type: Option<String>,
    #[serde(default)]
    jkt: Option<String>,
    expires_at: u64,
    #[serde(default)]
    vouched_at: u64,
}

impl Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.text();
        Fields {
            kind: self.kind,
            subject: t.subject,
            user_id: t.user_id,
            client_id: t.client_id,
            db: t.db,
            scopes: &self.scopes,
            sid: t.sid,
            jti: t.jti,
            is_admin: self.is_admin,
            user_type: t.user_type,
            jkt: t.jkt,
            expires_at: self.expires_at,
            vouched_at: self.vouched_at,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = OwnedFields::deserialize(deserializer)?;
        let text = PrincipalText {
            subject: &f.subject,
            user_id: f.user_id.as_deref(),
            client_id: f.client_id.as_deref(),
            db: f.db.as_deref(),
            sid: f.sid.as_deref(),
            jti: f.jti.as_deref(),
            user_type: f.user_type.as_deref(),
            jkt: f.jkt.as_deref(),
        };
        let mut principal = Principal::new(f.kind, &text, f.scopes, f.expires_at);
        principal.is_admin = f.is_admin;
        principal.vouched_at = f.vouched_at;
        Ok(principal)
    }
}

impl Principal {
    /// A principal of `kind` with these texts and scopes, valid until
    /// `expires_at`; not an admin, vouched for at 0 (set the fields).
    pub fn new(
        kind: TokenKind,
        text: &PrincipalText<'_>,
        scopes: ScopeSet,
        expires_at: u64,
    ) -> Self {
        Principal {
            kind,
            texts: Packed::new(text),
            scopes,
            is_admin: false,
            expires_at,
            vouched_at: 0,
        }
    }

    /// Every text field, borrowed.
    pub fn text(&self) -> PrincipalText<'_> {
        PrincipalText::from_fields(std::array::from_fn(|i| self.texts.get(i))).unwrap_or_default()
    }

    /// The ERP login: `sub` for user tokens and PATs, the SystemUser for
    /// service tokens and SATs.
    pub fn subject(&self) -> &str {
        self.texts.get(SUBJECT).unwrap_or_default()
    }

    /// The user's GUID (`id`, or `client_system_user_id`), when known.
    pub fn user_id(&self) -> Option<&str> {
        self.texts.get(USER_ID)
    }

    /// The trusted application (`client_id` = ApplicationUri).
    pub fn client_id(&self) -> Option<&str> {
        self.texts.get(CLIENT_ID)
    }

    /// The database / tenant (`db` or `client_db`).
    pub fn db(&self) -> Option<&str> {
        self.texts.get(DB)
    }

    /// The identity session (`sid`), for user tokens.
    pub fn sid(&self) -> Option<&str> {
        self.texts.get(SID)
    }

    /// The token id (`jti`).
    pub fn jti(&self) -> Option<&str> {
        self.texts.get(JTI)
    }

    /// ERP.net's `user_type` (or `client_system_user_type`).
    pub fn user_type(&self) -> Option<&str> {
        self.texts.get(USER_TYPE)
    }

    /// The thumbprint of the DPoP key the token is bound to, if it is.
    pub fn jkt(&self) -> Option<&str> {
        self.texts.get(JKT)
    }

    /// Whether every value that may become a header is free of control characters.
    /// A claim with CR or LF would otherwise smuggle headers upstream.
    pub fn is_header_safe(&self) -> bool {
        let t = self.text();
        // Every field but `jti`, which never becomes a header.
        let fields = [
            Some(t.subject),
            t.user_id,
            t.client_id,
            t.db,
            t.sid,
            t.user_type,
        ];
        fields
            .into_iter()
            .flatten()
            .all(|v| !v.chars().any(char::is_control))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_texts_keep_absent_apart_from_empty_and_round_trip() {
        let text = PrincipalText {
            subject: "alice",
            user_id: Some(""),
            client_id: Some("app"),
            jti: Some("J1"),
            user_type: Some("Ünïcode"),
            ..PrincipalText::default()
        };
        let mut p = Principal::new(TokenKind::Pat, &text, ScopeSet::parse("read").unwrap(), 9);
        p.vouched_at = 3;
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.user_id(), Some(""));
        assert_eq!(p.client_id(), Some("app"));
        assert_eq!((p.db(), p.sid()), (None, None));
        assert_eq!(p.jti(), Some("J1"));
        assert_eq!(p.user_type(), Some("Ünïcode"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["subject"], "alice");
        assert_eq!(json["db"], serde_json::Value::Null);
        assert_eq!(json["scopes"], "read");
        let back: Principal = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}

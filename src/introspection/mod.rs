//! RFC 7662 token introspection: the wire type (written once, used by the edge
//! and by the host), request building, and strict response parsing.

use serde::{Deserialize, Serialize};

use crate::json::{self, JsonLimits};
use crate::principal::{Principal, PrincipalText, TokenKind};
use crate::scope::ScopeSet;

/// `aud` as RFC 7662 allows it: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience, sent as a bare string.
    One(String),
    /// Several audiences, sent as an array of strings.
    Many(Vec<String>),
}

/// An introspection response (RFC 7662 §2.2) plus ERP.net members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    /// Whether the token is currently active. The only required member.
    pub active: bool,
    /// Granted scopes, space-separated on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
    /// The client the token was issued to (ERP.net: ApplicationUri).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Human-readable identifier of the resource owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Type of the token, e.g. `reference_token` or `access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issue time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not-before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Subject: the ERP login the token acts as (the SystemUser for a SAT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences the token is meant for: a JWT's `aud` claim when the host
    /// introspects one. Informational; [`Self::reference_principal`] ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Who issued the token: a JWT's `iss` claim when the host introspects one.
    /// Informational; [`Self::reference_principal`] ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A JWT's `jti` claim (reference-token replies leave it out). It goes into
    /// the principal, so `jti` events on the revocation feed apply to the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// erpgate: the token kind (`user`, `service`, `pat` or `sat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_token_kind: Option<TokenKind>,
    /// ERP.net: the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// ERP.net: the acting user's GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// ERP.net: the identity session, for user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// ERP.net: whether the acting user is an administrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    /// ERP.net: the acting user's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.2), for a DPoP-bound one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 `cnf`, as DPoP uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the DPoP key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// Why an introspection reply could not be used. Each one fails the request
/// under the policy's failure mode; none of them allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrospectionError {
    /// The endpoint answered with a status other than 200.
    #[error("introspection endpoint answered HTTP {0}")]
    Status(u16),
    /// The body is not a bounded JSON object or has duplicate members.
    #[error("introspection body is not a bounded JSON object: {0}")]
    Json(#[from] json::JsonError),
    /// A member has the wrong type.
    #[error("introspection body does not match RFC 7662: {0}")]
    Shape(String),
    /// An active reply without `exp`, or without a subject.
    #[error("active introspection reply lacks `{0}`")]
    Missing(&'static str),
}

/// Largest introspection body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The `Authorization` value with which a gateway authenticates to the
/// introspection endpoint and the revocation feed: HTTP Basic over the
/// client id and secret, each first form-encoded as RFC 6749 §2.3.1 asks
/// (`application/x-www-form-urlencoded`), so a `:` or `%` in either survives.
/// Every adapter sends this value; none builds its own.
pub fn client_authorization(client_id: &str, client_secret: &str) -> String {
    use base64::Engine as _;
    let mut pair = String::with_capacity(client_id.len() + client_secret.len() + 1);
    pair.extend(form_urlencoded::byte_serialize(client_id.as_bytes()));
    pair.push(':');
    pair.extend(form_urlencoded::byte_serialize(client_secret.as_bytes()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The form body of an introspection request (RFC 7662 §2.1).
pub fn request_body(token: &str, token_type_hint: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("token_type_hint", token_type_hint)
        .finish()
        .into_bytes()
}

/// Parses a reply strictly.
pub fn parse_response(
    status: u16,
    body: &[u8],
) -> Result<IntrospectionResponse, IntrospectionError> {
    if status != 200 {
        return Err(IntrospectionError::Status(status));
    }
    let value = json::parse_value(
        body,
        JsonLimits {
            max_bytes: MAX_BODY_BYTES,
            max_depth: 4,
        },
    )?;
    if !value.is_object() {
        return Err(IntrospectionError::Json(json::JsonError::NotAnObject));
    }
    serde_json::from_value(value).map_err(|e| IntrospectionError::Shape(e.to_string()))
}

impl IntrospectionResponse {
    /// An inactive reply: `{"active": false}` and nothing else (RFC 7662 §2.2).
    pub fn inactive() -> Self {
        Self::default()
    }

    /// The principal of an active reply for a reference token. The kind comes from
    /// `erp_token_kind`; a server that does not send it is read as RFC-generic:
    /// a reply with a subject is a PAT, one without is a SAT acting as the client.
    pub fn reference_principal(&self) -> Result<Principal, IntrospectionError> {
        let exp = self.exp.ok_or(IntrospectionError::Missing("exp"))?;
        let kind = match self.erp_token_kind {
            Some(kind) => kind,
            None if self.sub.is_some() || self.username.is_some() => TokenKind::Pat,
            None => TokenKind::Sat,
        };
        let subject = self
            .sub
            .as_deref()
            .or(self.username.as_deref())
            .or_else(|| {
                (kind == TokenKind::Sat)
                    .then_some(self.client_id.as_deref())
                    .flatten()
            })
            .filter(|s| !s.is_empty())
            .ok_or(IntrospectionError::Missing("sub"))?;
        let text = PrincipalText {
            subject,
            user_id: self.id.as_deref(),
            client_id: self.client_id.as_deref(),
            db: self.db.as_deref(),
            sid: self.sid.as_deref(),
            jti: self.jti.as_deref(),
            user_type: self.user_type.as_deref(),
            jkt: self.cnf.as_ref().and_then(|c| c.jkt.as_deref()),
        };
        let scopes = self.scope.clone().unwrap_or_default();
        let mut principal = Principal::new(kind, &text, scopes, exp);
        principal.is_admin = self.is_admin.unwrap_or(false);
        if principal.is_header_safe() {
            Ok(principal)
        } else {
            Err(IntrospectionError::Shape(
                "control characters in a member".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_serialises_minimally() {
        assert_eq!(
            serde_json::to_string(&IntrospectionResponse::inactive()).unwrap(),
            r#"{"active":false}"#
        );
    }

    #[test]
    fn parses_active_reference_reply() {
        let body = br#"{"active":true,"scope":"read update","client_id":"app","sub":"alice","exp":2000,"iat":1000,"token_type":"reference_token","erp_token_kind":"pat","db":"demo"}"#;
        let r = parse_response(200, body).unwrap();
        let p = r.reference_principal().unwrap();
        assert_eq!(p.kind, TokenKind::Pat);
        assert_eq!(p.subject(), "alice");
        assert!(p.scopes.contains("update"));
    }

    #[test]
    fn refuses_malformed_replies() {
        assert_eq!(
            parse_response(500, b"{}"),
            Err(IntrospectionError::Status(500))
        );
        assert!(matches!(
            parse_response(200, b"<html>"),
            Err(IntrospectionError::Json(_))
        ));
        assert!(matches!(
            parse_response(200, br#"{"active":"yes"}"#),
            Err(IntrospectionError::Shape(_))
        ));
        assert!(matches!(
            parse_response(200, br#"{"active":true,"active":false}"#),
            Err(IntrospectionError::Json(_))
        ));
        assert!(matches!(
            parse_response(200, br#"{"active":true,"scope":7}"#),
            Err(IntrospectionError::Shape(_))
        ));
        let r = parse_response(200, br#"{"active":true,"sub":"a"}"#).unwrap();
        assert_eq!(
            r.reference_principal(),
            Err(IntrospectionError::Missing("exp"))
        );
    }

    #[test]
    fn request_body_is_form_encoded() {
        assert_eq!(
            String::from_utf8(request_body("enrt_AB", "access_token")).unwrap(),
            "token=enrt_AB&token_type_hint=access_token"
        );
    }

    #[test]
    fn client_authorization_form_encodes_both_parts() {
        // RFC 6749 §2.3.1: `%`, `+`, `:` and space are form-encoded before
        // Basic; the host form-decodes them back.
        assert_eq!(
            client_authorization("edge", "s%e+c:r et"),
            "Basic ZWRnZTpzJTI1ZSUyQmMlM0FyK2V0"
        );
        assert_eq!(
            client_authorization("edge app", "p%+:q"),
            "Basic ZWRnZSthcHA6cCUyNSUyQiUzQXE="
        );
        assert_eq!(
            client_authorization("edge", "secret"),
            "Basic ZWRnZTpzZWNyZXQ="
        );
    }
}

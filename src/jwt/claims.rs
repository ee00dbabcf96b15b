//! Claim validation (RFC 7519 §4.1, RFC 9068 §4) and ERP.net principal
//! extraction (user tokens vs. service tokens).

use serde_json::{Map, Value};

use super::TokenError;
use crate::principal::{Principal, TokenKind};
use crate::scope::ScopeSet;

/// Per-issuer claim rules, compiled from the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// `aud` must contain one of these.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_s: u64,
    /// When set, `iat` is required and may be at most this old.
    pub max_token_age_s: Option<u64>,
}

fn opt_str<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'c str>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::InvalidClaim(name)),
    }
}

fn opt_time(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        // NumericDate; erpgate accepts whole, non-negative seconds only.
        Some(v) => v.as_u64().map(Some).ok_or(TokenError::InvalidClaim(name)),
    }
}

fn audience_ok(claims: &Map<String, Value>, accepted: &[String]) -> Result<(), TokenError> {
    let matches = |a: &str| accepted.iter().any(|x| x == a);
    match claims.get("aud") {
        None => Err(TokenError::MissingClaim("aud")),
        Some(Value::String(aud)) => {
            if matches(aud) {
                Ok(())
            } else {
                Err(TokenError::AudienceMismatch)
            }
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut found = false;
            for item in items {
                let Value::String(aud) = item else {
                    return Err(TokenError::InvalidClaim("aud"));
                };
                found |= matches(aud);
            }
            if found {
                Ok(())
            } else {
                Err(TokenError::AudienceMismatch)
            }
        }
        Some(_) => Err(TokenError::InvalidClaim("aud")),
    }
}

fn flag(claims: &Map<String, Value>, name: &'static str) -> Result<bool, TokenError> {
    // ERP.net writes booleans as strings ("true"); accept both forms.
    match claims.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(TokenError::InvalidClaim(name)),
    }
}

fn scopes(claims: &Map<String, Value>) -> Result<ScopeSet, TokenError> {
    for name in ["scope", "scp"] {
        if let Some(value) = claims.get(name) {
            return ScopeSet::from_json(value).map_err(|_| TokenError::InvalidClaim(name));
        }
    }
    Ok(ScopeSet::new())
}

/// Checks the time claims and the audience, then builds the principal.
/// `iss` was matched exactly when the issuer was selected.
pub fn principal_from_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules,
    now_s: u64,
) -> Result<Principal, TokenError> {
    let leeway = rules.leeway_s;
    let exp = opt_time(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if now_s >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = opt_time(claims, "nbf")?
        && now_s.saturating_add(leeway) < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    let iat = opt_time(claims, "iat")?;
    if let Some(iat) = iat
        && iat > now_s.saturating_add(leeway)
    {
        return Err(TokenError::IssuedInFuture);
    }
    if let Some(max_age) = rules.max_token_age_s {
        let iat = iat.ok_or(TokenError::MissingClaim("iat"))?;
        if now_s > iat.saturating_add(max_age).saturating_add(leeway) {
            return Err(TokenError::TooOld);
        }
    }
    audience_ok(claims, &rules.audiences)?;
    let scopes = scopes(claims)?;
    let client_id = opt_str(claims, "client_id")?.map(str::to_owned);
    let jti = opt_str(claims, "jti")?.map(str::to_owned);
    let sub = opt_str(claims, "sub")?;
    let system_user = opt_str(claims, "client_system_user")?;
    let principal = match (sub, system_user) {
        (Some(sub), _) => Principal {
            kind: TokenKind::User,
            subject: sub.to_owned(),
            user_id: opt_str(claims, "id")?.map(str::to_owned),
            client_id,
            db: opt_str(claims, "db")?.map(str::to_owned),
            scopes,
            sid: opt_str(claims, "sid")?.map(str::to_owned),
            jti,
            is_admin: flag(claims, "is_admin")?,
            user_type: opt_str(claims, "user_type")?.map(str::to_owned),
            expires_at: exp,
        },
        (None, Some(system_user)) => Principal {
            kind: TokenKind::Service,
            subject: system_user.to_owned(),
            user_id: opt_str(claims, "client_system_user_id")?.map(str::to_owned),
            client_id,
            db: opt_str(claims, "client_db")?.map(str::to_owned),
            scopes,
            sid: None,
            jti,
            is_admin: false,
            user_type: opt_str(claims, "client_system_user_type")?.map(str::to_owned),
            expires_at: exp,
        },
        (None, None) => return Err(TokenError::MissingClaim("sub")),
    };
    if principal.subject.is_empty() {
        return Err(TokenError::InvalidClaim("sub"));
    }
    if !principal.is_header_safe() {
        return Err(TokenError::InvalidClaim("control characters"));
    }
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ClaimRules {
        ClaimRules {
            audiences: vec!["DomainAPI".into()],
            leeway_s: 60,
            max_token_age_s: None,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn erpnet_service_token() {
        let c = claims(json!({"nbf":1000,"exp":4600,"iss":"https://e1/id",
            "aud":["DomainAPI","TableAPI","OLAP","AppServer","https://e1/id/resources"],
            "client_id":"PK","client_system_user":"admin","client_system_user_type":"InternalUser",
            "client_db":"E1_DEV-1 Test","jti":"8D0B705573A1A98FDBADFF0CD7F7EEB4","iat":1000,
            "scope":["read","update"]}));
        let p = principal_from_claims(&c, &rules(), 2000).unwrap();
        assert_eq!(p.kind, TokenKind::Service);
        assert_eq!(p.subject, "admin");
        assert_eq!(p.db.as_deref(), Some("E1_DEV-1 Test"));
        assert_eq!(p.scopes.to_string(), "read update");
    }

    #[test]
    fn erpnet_user_token_with_string_flags() {
        let c = claims(
            json!({"exp":4600,"aud":"DomainAPI","sub":"admin","id":"9da6",
            "is_admin":"true","sid":"D1FF","scope":"read"}),
        );
        let p = principal_from_claims(&c, &rules(), 2000).unwrap();
        assert_eq!(p.kind, TokenKind::User);
        assert!(p.is_admin);
        assert_eq!(p.sid.as_deref(), Some("D1FF"));
    }

    #[test]
    fn time_edges_at_leeway() {
        let c = claims(json!({"exp":1000,"aud":"DomainAPI","sub":"a"}));
        assert!(principal_from_claims(&c, &rules(), 1059).is_ok());
        assert_eq!(
            principal_from_claims(&c, &rules(), 1060),
            Err(TokenError::Expired)
        );
        let c = claims(json!({"exp":9000,"nbf":1000,"aud":"DomainAPI","sub":"a"}));
        assert!(principal_from_claims(&c, &rules(), 940).is_ok());
        assert_eq!(
            principal_from_claims(&c, &rules(), 939),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn wrong_shapes() {
        let c = claims(json!({"exp":9000,"aud":[],"sub":"a"}));
        assert_eq!(
            principal_from_claims(&c, &rules(), 1),
            Err(TokenError::InvalidClaim("aud"))
        );
        let c = claims(json!({"exp":9000,"aud":"DomainAPI","sub":"a","scope":{"read":true}}));
        assert_eq!(
            principal_from_claims(&c, &rules(), 1),
            Err(TokenError::InvalidClaim("scope"))
        );
        let c = claims(json!({"exp":9000.5,"aud":"DomainAPI","sub":"a"}));
        assert_eq!(
            principal_from_claims(&c, &rules(), 1),
            Err(TokenError::InvalidClaim("exp"))
        );
        let c = claims(json!({"exp":9000,"aud":"DomainAPI"}));
        assert_eq!(
            principal_from_claims(&c, &rules(), 1),
            Err(TokenError::MissingClaim("sub"))
        );
        let c = claims(json!({"exp":9000,"aud":"DomainAPI","sub":"a\r\nx-erp-db: evil"}));
        assert!(matches!(
            principal_from_claims(&c, &rules(), 1),
            Err(TokenError::InvalidClaim(_))
        ));
    }
}

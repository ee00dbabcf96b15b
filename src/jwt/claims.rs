//! Claim validation (RFC 7519 §4.1, RFC 9068 §4) and ERP.net principal
//! extraction (user tokens vs. service tokens).

use serde_json::{Map, Value};

use super::TokenError;
use crate::principal::{Principal, PrincipalText, TokenKind};
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

/// A NumericDate (RFC 7519 §2): non-negative seconds since the epoch,
/// fractions allowed. Compared exactly, never rounded toward validity.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Date {
    Whole(u64),
    Fraction(f64),
}

impl Date {
    /// `self + secs`.
    fn plus(self, secs: u64) -> Date {
        match self {
            Date::Whole(t) => Date::Whole(t.saturating_add(secs)),
            Date::Fraction(t) => Date::Fraction(t + secs as f64),
        }
    }

    /// `self` against whole seconds, exactly.
    fn cmp_secs(self, secs: u64) -> std::cmp::Ordering {
        match self {
            Date::Whole(t) => t.cmp(&secs),
            Date::Fraction(t) => t
                .partial_cmp(&(secs as f64))
                .unwrap_or(std::cmp::Ordering::Greater),
        }
    }

    /// Whole seconds, rounded down: a deadline never moves later.
    fn floor(self) -> u64 {
        match self {
            Date::Whole(t) => t,
            Date::Fraction(t) => t.floor() as u64,
        }
    }
}

fn opt_time(claims: &Map<String, Value>, name: &'static str) -> Result<Option<Date>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match (v.as_u64(), v.as_f64()) {
            (Some(t), _) => Ok(Some(Date::Whole(t))),
            (None, Some(t)) if t.is_finite() && t >= 0.0 => Ok(Some(Date::Fraction(t))),
            _ => Err(TokenError::InvalidClaim(name)),
        },
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
    // RFC 7800 `cnf`: a DPoP key's thumbprint goes into the principal (the
    // engine then asks for the key's proof); any other confirmation method
    // (a client certificate) cannot be checked here.
    let jkt = match claims.get("cnf") {
        None => None,
        Some(Value::Object(cnf)) => match (cnf.get("jkt"), cnf.len()) {
            (Some(Value::String(jkt)), 1) if !jkt.is_empty() => Some(jkt.as_str()),
            _ => return Err(TokenError::UnsupportedConfirmation),
        },
        Some(_) => return Err(TokenError::InvalidClaim("cnf")),
    };
    use std::cmp::Ordering::{Greater, Less};
    let exp_date = opt_time(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if exp_date.plus(leeway).cmp_secs(now_s) != Greater {
        return Err(TokenError::Expired);
    }
    let exp = exp_date.floor();
    if let Some(nbf) = opt_time(claims, "nbf")?
        && nbf.cmp_secs(now_s.saturating_add(leeway)) == Greater
    {
        return Err(TokenError::NotYetValid);
    }
    let iat = opt_time(claims, "iat")?;
    if let Some(iat) = iat
        && iat.cmp_secs(now_s.saturating_add(leeway)) == Greater
    {
        return Err(TokenError::IssuedInFuture);
    }
    if let Some(max_age) = rules.max_token_age_s {
        let iat = iat.ok_or(TokenError::MissingClaim("iat"))?;
        if iat.plus(max_age.saturating_add(leeway)).cmp_secs(now_s) == Less {
            return Err(TokenError::TooOld);
        }
    }
    audience_ok(claims, &rules.audiences)?;
    let scopes = scopes(claims)?;
    let client_id = opt_str(claims, "client_id")?;
    let jti = opt_str(claims, "jti")?;
    let sub = opt_str(claims, "sub")?;
    let vouched_at = iat.map_or(0, |iat| iat.floor());
    let system_user = opt_str(claims, "client_system_user")?;
    let principal = match (sub, system_user) {
        (Some(sub), _) => {
            let text = PrincipalText {
                subject: sub,
                user_id: opt_str(claims, "id")?,
                client_id,
                db: opt_str(claims, "db")?,
                sid: opt_str(claims, "sid")?,
                jti,
                user_type: opt_str(claims, "user_type")?,
                jkt,
            };
            let mut p = Principal::new(TokenKind::User, &text, scopes, exp);
            p.is_admin = flag(claims, "is_admin")?;
            p.vouched_at = vouched_at;
            p
        }
        (None, Some(system_user)) => {
            let text = PrincipalText {
                subject: system_user,
                user_id: opt_str(claims, "client_system_user_id")?,
                client_id,
                db: opt_str(claims, "client_db")?,
                sid: None,
                jti,
                user_type: opt_str(claims, "client_system_user_type")?,
                jkt,
            };
            let mut p = Principal::new(TokenKind::Service, &text, scopes, exp);
            p.vouched_at = vouched_at;
            p
        }
        (None, None) => return Err(TokenError::MissingClaim("sub")),
    };
    if principal.subject().is_empty() {
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
        assert_eq!(p.subject(), "admin");
        assert_eq!(p.db(), Some("E1_DEV-1 Test"));
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
        assert_eq!(p.sid(), Some("D1FF"));
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

    /// A DPoP key's thumbprint is kept; a binding this edge cannot check
    /// (a certificate, RFC 8705) refuses the token.
    #[test]
    fn a_dpop_binding_is_kept_and_others_refused() {
        let bound = claims(json!({"exp":9000,"aud":"DomainAPI","sub":"a","cnf":{"jkt":"x"}}));
        let p = principal_from_claims(&bound, &rules(), 1000).unwrap();
        assert_eq!(p.jkt(), Some("x"));
        for cnf in [
            json!({"x5t#S256": "y"}),
            json!({"jkt": "x", "x5t#S256": "y"}),
            json!({"jkt": ""}),
            json!({"jkt": 1}),
        ] {
            let c = claims(json!({"exp":9000,"aud":"DomainAPI","sub":"a","cnf":cnf}));
            assert_eq!(
                principal_from_claims(&c, &rules(), 1000),
                Err(TokenError::UnsupportedConfirmation)
            );
        }
        let c = claims(json!({"exp":9000,"aud":"DomainAPI","sub":"a","cnf":"x"}));
        assert_eq!(
            principal_from_claims(&c, &rules(), 1000),
            Err(TokenError::InvalidClaim("cnf"))
        );
    }

    /// RFC 7519 §2 allows fractional NumericDates (`jose` accepts them); a
    /// future `exp` of `1766508790.5` was refused. Deadlines compare
    /// exactly and are never rounded toward validity.
    #[test]
    fn fractional_dates_compare_exactly() {
        let leeway0 = ClaimRules {
            leeway_s: 0,
            ..rules()
        };
        let c = claims(json!({"exp":9000.5,"aud":"DomainAPI","sub":"a"}));
        let p = principal_from_claims(&c, &leeway0, 9000).unwrap();
        assert_eq!(p.expires_at, 9000, "cached no later than the deadline");
        assert_eq!(
            principal_from_claims(&c, &leeway0, 9001),
            Err(TokenError::Expired)
        );
        let c = claims(json!({"exp":9999,"nbf":1000.5,"aud":"DomainAPI","sub":"a"}));
        assert_eq!(
            principal_from_claims(&c, &leeway0, 1000),
            Err(TokenError::NotYetValid)
        );
        assert!(principal_from_claims(&c, &leeway0, 1001).is_ok());
        let c = claims(json!({"exp":9999,"iat":1000.25,"aud":"DomainAPI","sub":"a"}));
        assert_eq!(
            principal_from_claims(&c, &leeway0, 1000),
            Err(TokenError::IssuedInFuture)
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
        for bad in [json!(-1), json!(-0.5), json!("9000"), json!(true)] {
            let c = claims(json!({"exp":bad,"aud":"DomainAPI","sub":"a"}));
            assert_eq!(
                principal_from_claims(&c, &rules(), 1),
                Err(TokenError::InvalidClaim("exp")),
                "{bad}"
            );
        }
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

//! The decision log: one JSON line per decision, with the same fields on
//! every artifact (the filter writes it through `proxy_log`, the worker to
//! `console` and a callback, the gateway and the host to stdout).
//!
//! Schema `erpgate.decision.v1`; every member is always present, `null`
//! when it does not apply:
//!
//! | member | type | meaning |
//! |---|---|---|
//! | `schema` | string | `"erpgate.decision.v1"` |
//! | `ts_ms` | number | when the decision was made, Unix milliseconds |
//! | `route` | string, null | the matched route's name |
//! | `outcome` | string | `"allow"` or `"deny"`: what enforcement decides |
//! | `enforced` | bool | false in shadow mode: a `"deny"` then let the request through untouched |
//! | `reason` | string, null | the denial's reason code (`null` for an allow) |
//! | `status` | number | 200 for an allow, else the denial's status (also in shadow mode) |
//! | `token_kind` | string, null | `user`, `service`, `pat` or `sat` |
//! | `client_id` | string, null | the trusted application |
//! | `subject` | string, null | the ERP login the token speaks for |
//! | `token_id` | string, null | the token's `jti` (a JWT's, or the one introspection returned) |
//! | `cached` | bool | whether the verdict came from a cache rather than a verification or call |
//! | `duration_us` | number, null | the decision's time inside the module, microseconds, where the adapter can tell |
//!
//! A line never carries a token, a secret, a header value or a claim other
//! than those above.

use serde::Serialize;

use crate::decision::Decision;
use crate::principal::Principal;
use crate::time::Time;

/// The schema name every line carries.
pub const SCHEMA: &str = "erpgate.decision.v1";

/// One decision, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionLog<'a> {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Unix milliseconds.
    pub ts_ms: u64,
    /// The matched route.
    pub route: Option<&'a str>,
    /// `allow` or `deny`.
    pub outcome: &'static str,
    /// False in shadow mode.
    pub enforced: bool,
    /// The denial's reason code.
    pub reason: Option<&'static str>,
    /// 200, or the denial's status.
    pub status: u16,
    /// The token kind.
    pub token_kind: Option<&'static str>,
    /// The trusted application.
    pub client_id: Option<&'a str>,
    /// The ERP login.
    pub subject: Option<&'a str>,
    /// The token's `jti`.
    pub token_id: Option<&'a str>,
    /// From a cache.
    pub cached: bool,
    /// Time inside the module, microseconds.
    pub duration_us: Option<u64>,
}

impl<'a> DecisionLog<'a> {
    /// The record of `decision`, made at `now`; `None` for a local answer
    /// that decides nothing (the protected-resource metadata).
    pub fn of(decision: &'a Decision, now: Time, duration_us: Option<u64>) -> Option<Self> {
        let (route, outcome, enforced, reason, status, principal, cached) = match decision {
            Decision::Allow(allow) => match &allow.would_deny {
                Some(denial) => (
                    denial.route.as_deref(),
                    "deny",
                    false,
                    Some(denial.reason.code()),
                    denial.reason.status(),
                    denial.principal.as_deref(),
                    false,
                ),
                None => (
                    allow.route.as_deref(),
                    "allow",
                    allow.enforced,
                    None,
                    200,
                    allow.principal(),
                    allow.from_cache,
                ),
            },
            Decision::Deny(denial) => (
                denial.route.as_deref(),
                "deny",
                true,
                Some(denial.reason.code()),
                denial.reason.status(),
                denial.principal.as_deref(),
                false,
            ),
            Decision::Answer(_) => return None,
        };
        let field = |f: fn(&'a Principal) -> Option<&'a str>| principal.and_then(f);
        Some(DecisionLog {
            schema: SCHEMA,
            ts_ms: now.millis(),
            route,
            outcome,
            enforced,
            reason,
            status,
            token_kind: principal.map(|p| p.kind.as_str()),
            client_id: field(|p| p.client_id()),
            subject: field(|p| Some(p.subject())),
            token_id: field(|p| p.jti()),
            cached,
            duration_us,
        })
    }

    /// The JSON line (no newline).
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Allow, Denial, HeaderEdits, Reason};
    use crate::principal::TokenKind;

    fn principal() -> Principal {
        let text = crate::PrincipalText {
            subject: "alice",
            client_id: Some("app"),
            jti: Some("J1"),
            ..Default::default()
        };
        Principal::new(
            TokenKind::Pat,
            &text,
            crate::ScopeSet::parse("read").unwrap(),
            100,
        )
    }

    #[test]
    fn every_member_is_present_and_a_shadow_denial_reads_as_a_denial() {
        let denial = Denial {
            reason: Reason::InsufficientScope(Default::default()),
            route: Some("odata".into()),
            principal: Some(Box::new(principal())),
        };
        let shadow = Decision::Allow(Box::new(Allow {
            identity: None,
            route: Some("odata".into()),
            headers: HeaderEdits::default(),
            from_cache: false,
            enforced: false,
            would_deny: Some(denial.clone()),
        }));
        let line = DecisionLog::of(&shadow, Time::from_millis(1_500), Some(7))
            .unwrap()
            .line();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "schema": SCHEMA, "ts_ms": 1500, "route": "odata", "outcome": "deny",
                "enforced": false, "reason": "insufficient_scope", "status": 403,
                "token_kind": "pat", "client_id": "app", "subject": "alice",
                "token_id": "J1", "cached": false, "duration_us": 7
            })
        );
        let denied = Decision::Deny(denial);
        let enforced = DecisionLog::of(&denied, Time::from_millis(1), None).unwrap();
        assert!(enforced.enforced && enforced.outcome == "deny");
    }
}

//! The reference-token path: the introspection cache (local, then shared),
//! one introspection per token at a time, and what its reply decides.

use std::sync::Arc;

use super::Engine;
use super::state::{FLIGHT_GRACE, State};
use super::step::{
    Awaited, Flight, FlightKind, HttpCall, Outcome, Purpose, RouteRef, Step, Suspended,
};
use crate::cache::TokenHash;
use crate::decision::{Identity, Reason, Unavailable};
use crate::introspection;
use crate::policy::{FailureMode, Introspection};
use crate::principal::{Principal, TokenKind};
use crate::shared_cache::Space;
use crate::time::Time;

impl Engine {
    pub(super) fn start_reference(
        &self,
        route: RouteRef,
        token: &str,
        now: Time,
        state: &mut State,
    ) -> Step {
        let hash = TokenHash::of(token);
        state.note_token_sha256(hash);
        let Some(intro) = &self.policy.introspection else {
            return self.deny(Reason::ReferenceTokensNotAccepted, route);
        };
        if state.revocation.token_revoked(&hash, now.secs()) {
            state.reference_cache.remove(&hash);
            return self.deny(Reason::InactiveReference, route);
        }
        if let Some(cached) = state.reference_cache.get(&hash, now).cloned() {
            if !voided(state, cached.as_deref().map(|i| &i.principal), now) {
                state.stats.introspection_cache_hits += 1;
                return self.cached_reference(route, cached, now, state);
            }
            state.reference_cache.remove(&hash);
        }
        state.stats.introspection_cache_misses += 1;
        if let Some(entry) = state
            .shared_load(&self.policy, Space::Reference, &hash, now)
            .filter(|entry| !voided(state, entry.principal.as_ref(), now))
        {
            return match entry.principal {
                Some(principal)
                    if principal.expires_at > now.secs()
                        && !revoked_since(state, &principal, now) =>
                {
                    let identity = Identity::new(&self.policy, principal);
                    state.reference_cache.insert(
                        hash,
                        Some(Arc::clone(&identity)),
                        entry.fresh_until,
                        entry.stale_until,
                        now,
                    );
                    self.authorize(route, identity, true, now, state)
                }
                _ => self.deny(Reason::InactiveReference, route),
            };
        }
        if self.single_flight {
            if state.introspection_in_flight(&hash, now) {
                state.stats.flights_joined += 1;
                return Step::Wait {
                    flight: Flight(FlightKind::Introspection(hash)),
                    pending: Suspended {
                        route,
                        awaited: Awaited::Introspection {
                            hash,
                            follower: true,
                        },
                        folded: Vec::new(),
                        presented: None,
                    },
                };
            }
            state.lead_introspection(hash, now.plus(intro.endpoint.timeout + FLIGHT_GRACE), now);
        }
        state.stats.introspection_calls += 1;
        Step::Call {
            call: introspection_call(intro, token),
            pending: Suspended {
                route,
                awaited: Awaited::Introspection {
                    hash,
                    follower: false,
                },
                folded: Vec::new(),
                presented: None,
            },
        }
    }

    /// A remembered introspection: active, unexpired and not revoked since
    /// (by `jti` or `sid`: revocations are checked on every hit, never by
    /// scanning the caches when an event arrives), or inactive.
    fn cached_reference(
        &self,
        route: RouteRef,
        cached: Option<Arc<Identity>>,
        now: Time,
        state: &mut State,
    ) -> Step {
        match cached {
            Some(identity)
                if identity.principal.expires_at > now.secs()
                    && !revoked_since(state, &identity.principal, now) =>
            {
                self.authorize(route, identity, true, now, state)
            }
            _ => self.deny(Reason::InactiveReference, route),
        }
    }

    /// Applies an introspection outcome. A follower (single flight) first
    /// looks for what its leader cached, and does not count the call.
    pub(super) fn finish_reference(
        &self,
        route: RouteRef,
        hash: TokenHash,
        outcome: Outcome,
        follower: bool,
        now: Time,
        state: &mut State,
    ) -> Step {
        let Some(intro) = &self.policy.introspection else {
            return self.deny(Reason::ReferenceTokensNotAccepted, route);
        };
        if follower {
            if let Some(cached) = state.reference_cache.get(&hash, now).cloned() {
                return self.cached_reference(route, cached, now, state);
            }
        } else {
            state.end_introspection(&hash);
        }
        let failure = match self.apply_introspection(intro, hash, outcome, now, state) {
            Ok(Some(identity)) => return self.authorize(route, identity, false, now, state),
            Ok(None) => return self.deny(Reason::InactiveReference, route),
            Err(failure) => failure,
        };
        if !follower {
            state.stats.introspection_failures += 1;
        }
        if self.policy.failure_mode == FailureMode::ServeStale
            && let Some(Some(identity)) = state.reference_cache.get_stale(&hash, now).cloned()
            && identity.principal.expires_at > now.secs()
            && !revoked_since(state, &identity.principal, now)
            && !voided(state, Some(&identity.principal), now)
        {
            return self.authorize(route, identity, true, now, state);
        }
        self.deny(Reason::Unavailable(failure), route)
    }

    /// What an introspection reply says, remembered locally and shared: the
    /// principal of an active token, `None` for an inactive one, `Err` when
    /// the introspection itself failed.
    fn apply_introspection(
        &self,
        intro: &Introspection,
        hash: TokenHash,
        outcome: Outcome,
        now: Time,
        state: &mut State,
    ) -> Result<Option<Arc<Identity>>, Unavailable> {
        let (status, body) = match outcome {
            Outcome::Response { status, body } => (status, body),
            Outcome::Timeout => return Err(Unavailable::IntrospectionTimeout),
            Outcome::Failed | Outcome::Verified(_) => return Err(Unavailable::IntrospectionFailed),
        };
        let reply = introspection::parse_response(status, &body)
            .map_err(|_| Unavailable::IntrospectionFailed)?;
        let cache = intro.cache;
        // A reply that names its issuer must name one this policy trusts: an
        // introspection endpoint that also answers for another instance
        // cannot vouch for that instance's tokens here.
        let foreign = reply
            .iss
            .as_deref()
            .is_some_and(|iss| !self.policy.issuers.iter().any(|i| i.issuer == iss));
        if !reply.active || foreign {
            let until = now.plus(cache.negative_ttl);
            state.reference_cache.insert(hash, None, until, until, now);
            if until > now {
                state.shared_store(&self.policy, Space::Reference, &hash, None, until, until);
            }
            return Ok(None);
        }
        let mut principal = reply
            .reference_principal()
            .map_err(|_| Unavailable::IntrospectionFailed)?;
        principal.vouched_at = now.secs();
        if !matches!(principal.kind, TokenKind::Pat | TokenKind::Sat) {
            return Err(Unavailable::IntrospectionFailed);
        }
        if principal.expires_at <= now.secs() || state.revocation.token_revoked(&hash, now.secs()) {
            return Ok(None);
        }
        let expiry = Time::from_secs(principal.expires_at);
        let fresh = now.plus(cache.max_ttl).min(expiry);
        let stale = fresh.plus(cache.max_stale).min(expiry);
        if fresh > now {
            state.shared_store(
                &self.policy,
                Space::Reference,
                &hash,
                Some(&principal),
                fresh,
                stale,
            );
        }
        let identity = Identity::new(&self.policy, principal);
        state
            .reference_cache
            .insert(hash, Some(Arc::clone(&identity)), fresh, stale, now);
        Ok(Some(identity))
    }
}

/// The RFC 7662 call for one token.
fn introspection_call(intro: &Introspection, token: &str) -> HttpCall {
    let up = &intro.endpoint;
    HttpCall {
        purpose: Purpose::Introspection,
        upstream: up.upstream.clone(),
        method: "POST",
        path: up.path.clone(),
        authority: up.authority.clone(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        body: introspection::request_body(token, &intro.token_type_hint),
        timeout: up.timeout,
    }
}

/// Whether a remembered introspection reply was obtained before a change to
/// its app or subject (a `client_id` or `sub` event): it is dropped, and the
/// token introspected again. A remembered inactive reply stays.
fn voided(state: &State, principal: Option<&Principal>, now: Time) -> bool {
    principal.is_some_and(|p| {
        state
            .revocation
            .voided(p.client_id(), p.subject(), p.vouched_at, now.secs())
    })
}

/// Whether a remembered reference token's `jti` or `sid` was revoked.
fn revoked_since(state: &State, principal: &Principal, now: Time) -> bool {
    state
        .revocation
        .jwt_revoked(principal.jti(), principal.sid(), now.secs())
}

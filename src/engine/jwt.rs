//! The JWT path: the verdict cache, decoding, key selection (fetching the
//! issuer's JWKS at most once), signature and claims checks, and the one
//! place a refusal becomes a denial and a negative-cache entry.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Engine;
use super::state::{JwtEntry, JwtVerdict, State, in_flight};
use super::step::{
    Awaited, Flight, FlightKind, Hashes, KeyWait, Outcome, RouteRef, SignatureCheck, Step,
    Suspended, VerifyRequest,
};
use crate::cache::TokenHash;
use crate::decision::{Identity, Reason, Unavailable};
use crate::jwt::{self, Decoded, TokenError};
use crate::principal::Principal;
use crate::shared_cache::Space;
use crate::time::Time;

/// Why a JWT was not accepted: what [`Engine::reject_jwt`] turns into a
/// denial.
#[derive(Debug)]
enum JwtRejection {
    /// The token itself is refused.
    Token(TokenError),
    /// No key can be had for the issuer (none configured or fetched yet), or
    /// host crypto could not answer: an outage, remembered nowhere.
    KeysUnavailable,
    /// The kid is unknown and the fetch that might have brought it failed:
    /// the key may exist, so this is an outage, not a bad token, and nothing
    /// remembered about the token survives it.
    KeyFetchFailed,
}

impl From<TokenError> for JwtRejection {
    fn from(error: TokenError) -> Self {
        JwtRejection::Token(error)
    }
}

/// What the engine knows about the issuer's keys when the kid is unknown.
#[derive(Debug, Clone, Copy)]
enum KeyFetch {
    /// Nothing fetched for this request: it may fetch the keys (or wait on
    /// the fetch under way).
    Allowed,
    /// A fetch for this request just succeeded: the keys are current.
    Succeeded,
    /// A fetch for this request just failed: the keys may be stale.
    Failed,
}

/// Whether a JWT was revoked: by `jti`, `sid` or hash, or minted before a
/// change to its app or subject (`client_id` / `sub` events).
fn is_revoked(state: &State, principal: &Principal, hash: &TokenHash, now: Time) -> bool {
    let (revocation, now_s) = (&state.revocation, now.secs());
    revocation.jwt_revoked(principal.jti(), principal.sid(), now_s)
        || revocation.token_revoked(hash, now_s)
        || revocation.voided(
            principal.client_id(),
            principal.subject(),
            principal.vouched_at,
            now_s,
        )
}

/// Remembers a verdict in the local cache until `until`.
fn remember(state: &mut State, hash: Hashes, verdict: JwtVerdict, until: Time, now: Time) {
    let entry = JwtEntry {
        sha: hash.sha,
        verdict,
    };
    state
        .jwt_cache
        .entries
        .insert(hash.key, entry, until, until, now);
}

impl Engine {
    /// A request whose Bearer token (raw bytes, see
    /// [`crate::credential::cached_bearer`]) has a verdict in the JWT cache: that
    /// verdict, checked again against revocations and the route. `None`
    /// on a miss; the credential is then parsed as usual.
    pub(super) fn jwt_cache_hit(
        &self,
        route: RouteRef,
        token: &[u8],
        now: Time,
        state: &mut State,
    ) -> Option<Step> {
        let key = state.jwt_cache.key(token);
        let entry = state.jwt_cache.entries.get(&key, now).cloned()?;
        state.stats.jwt_cache_hits += 1;
        let hash = Hashes {
            key,
            sha: entry.sha,
        };
        Some(self.cached_jwt(route, hash, entry.verdict, now, state))
    }

    pub(super) fn start_jwt(
        &self,
        route: RouteRef,
        token: &str,
        now: Time,
        state: &mut State,
    ) -> Step {
        let key = state.jwt_cache.key(token.as_bytes());
        if let Some(entry) = state.jwt_cache.entries.get(&key, now).cloned() {
            state.stats.jwt_cache_hits += 1;
            let hash = Hashes {
                key,
                sha: entry.sha,
            };
            state.note_token_sha256(hash.sha);
            return self.cached_jwt(route, hash, entry.verdict, now, state);
        }
        state.stats.jwt_cache_misses += 1;
        let hash = Hashes {
            key,
            sha: TokenHash::of(token),
        };
        state.note_token_sha256(hash.sha);
        if let Some(entry) = state.shared_load(&self.policy, Space::Jwt, &hash.sha, now)
            && let Some(principal) = entry.principal
        {
            let identity = Identity::new(&self.policy, principal);
            let until = entry.fresh_until;
            remember(state, hash, Ok(Arc::clone(&identity)), until, now);
            return self.cached_jwt(route, hash, Ok(identity), now, state);
        }
        self.decide_jwt(route, token, hash, KeyFetch::Allowed, now, state)
    }

    /// A remembered verdict: revocations and the route are checked again.
    fn cached_jwt(
        &self,
        route: RouteRef,
        hash: Hashes,
        verdict: JwtVerdict,
        now: Time,
        state: &mut State,
    ) -> Step {
        match verdict {
            Ok(identity) if is_revoked(state, &identity.principal, &hash.sha, now) => {
                state.jwt_cache.entries.remove(&hash.key);
                self.reject_jwt(route, hash, TokenError::Revoked.into(), now, state)
            }
            Ok(identity) => self.authorize(route, identity, true, now, state),
            // A remembered refusal is replayed as it was, not remembered again.
            Err(error) => self.deny(Reason::Token(error), route),
        }
    }

    /// Verifies a token; a refusal goes through [`Engine::reject_jwt`].
    fn decide_jwt(
        &self,
        route: RouteRef,
        token: &str,
        hash: Hashes,
        fetch: KeyFetch,
        now: Time,
        state: &mut State,
    ) -> Step {
        match self.verify_jwt(route, token, hash, fetch, now, state) {
            Ok(step) => step,
            Err(rejection) => self.reject_jwt(route, hash, rejection, now, state),
        }
    }

    /// The one place a refused JWT becomes a denial: a permanent refusal is
    /// also remembered for the policy's negative TTL.
    fn reject_jwt(
        &self,
        route: RouteRef,
        hash: Hashes,
        rejection: JwtRejection,
        now: Time,
        state: &mut State,
    ) -> Step {
        let error = match rejection {
            JwtRejection::Token(error) => error,
            JwtRejection::KeysUnavailable => {
                return self.deny(Reason::Unavailable(Unavailable::KeysUnavailable), route);
            }
            JwtRejection::KeyFetchFailed => {
                state.jwt_cache.entries.remove(&hash.key);
                return self.deny(Reason::Unavailable(Unavailable::KeysUnavailable), route);
            }
        };
        let ttl = self.policy.jwt_cache.negative_ttl;
        if error.is_permanent() && !ttl.is_zero() {
            remember(state, hash, Err(error.clone()), now.plus(ttl), now);
        }
        self.deny(Reason::Token(error), route)
    }

    /// Decodes, selects the key (fetching the JWKS at most once), verifies.
    /// `Ok` holds the decision, or the call, wait or host check it needs.
    fn verify_jwt(
        &self,
        route: RouteRef,
        token: &str,
        hash: Hashes,
        fetch: KeyFetch,
        now: Time,
        state: &mut State,
    ) -> Result<Step, JwtRejection> {
        let decoded = jwt::decode(token, &self.policy.limits)?;
        let issuer_idx = self.accepting_issuer(&decoded)?;
        let keys = state
            .issuers
            .get(issuer_idx)
            .map(|s| Arc::clone(&s.keys))
            .ok_or(TokenError::UnknownIssuer)?;
        let kid = decoded.header.kid.as_deref();
        let Some(key) = keys.select(kid) else {
            if kid.is_none() && keys.keys().len() > 1 {
                return Err(TokenError::KidRequired.into());
            }
            if let KeyFetch::Allowed = fetch
                && let Some(step) = self.fetch_keys(route, token, issuer_idx, now, state)
            {
                return Ok(step);
            }
            return Err(match fetch {
                _ if keys.is_empty() => JwtRejection::KeysUnavailable,
                KeyFetch::Failed => JwtRejection::KeyFetchFailed,
                KeyFetch::Allowed | KeyFetch::Succeeded => TokenError::UnknownKey.into(),
            });
        };
        if key.algorithm() != decoded.header.alg {
            return Err(TokenError::AlgorithmMismatch.into());
        }
        if self.host_crypto.contains(&key.algorithm())
            && let Some(host_key) = key.host_key()
        {
            return Ok(Step::Verify {
                request: VerifyRequest {
                    alg: key.algorithm(),
                    key: Arc::clone(host_key),
                    signing_input: decoded.signing_input.as_bytes().to_vec(),
                    signature: decoded.signature,
                },
                pending: Suspended {
                    route,
                    awaited: Awaited::Signature(SignatureCheck {
                        issuer: issuer_idx,
                        hash,
                        claims: decoded.claims,
                    }),
                    folded: Vec::new(),
                    presented: None,
                },
            });
        }
        if !key.verify(decoded.signing_input.as_bytes(), &decoded.signature) {
            return Err(TokenError::BadSignature.into());
        }
        self.finish_jwt(route, issuer_idx, hash, &decoded.claims, now, state)
    }

    /// The index of the issuer that may have signed the token: it is known,
    /// allows the header's algorithm, and the header's `typ` fits.
    fn accepting_issuer(&self, decoded: &Decoded<'_>) -> Result<usize, JwtRejection> {
        let iss = jwt::unverified_issuer(&decoded.claims)?;
        let (idx, issuer) = self.policy.issuer(iss).ok_or(TokenError::UnknownIssuer)?;
        if !issuer.algorithms.contains(&decoded.header.alg) {
            return Err(TokenError::AlgorithmNotAllowed.into());
        }
        if let Some(required) = &issuer.required_typ
            && !jwt::typ_matches(decoded.header.typ.as_deref(), required)
        {
            return Err(TokenError::WrongType.into());
        }
        Ok(idx)
    }

    /// Asks for the issuer's JWKS on behalf of a request with an unknown
    /// kid, or parks it on the fetch under way. `None` when neither may
    /// happen now (no JWKS endpoint, cooldown, or a fetch it cannot join).
    fn fetch_keys(
        &self,
        route: RouteRef,
        token: &str,
        issuer_idx: usize,
        now: Time,
        state: &mut State,
    ) -> Option<Step> {
        let suspended = |follower| Suspended {
            route,
            awaited: Awaited::Keys(KeyWait {
                token: token.to_owned(),
                issuer: issuer_idx,
                follower,
            }),
            folded: Vec::new(),
            presented: None,
        };
        let issuer = self.policy.issuers.get(issuer_idx)?;
        if let Some(call) = self.jwks_call_on_demand(issuer_idx, issuer, now, state) {
            return Some(Step::Call {
                call,
                pending: suspended(false),
            });
        }
        if self.single_flight
            && state
                .issuers
                .get(issuer_idx)
                .is_some_and(|s| in_flight(s.in_flight_until, now))
        {
            state.stats.flights_joined += 1;
            return Some(Step::Wait {
                flight: Flight(FlightKind::Jwks(issuer_idx)),
                pending: suspended(true),
            });
        }
        None
    }

    /// Claims, revocation, then the verdict is remembered and the route
    /// checked.
    fn finish_jwt(
        &self,
        route: RouteRef,
        issuer_idx: usize,
        hash: Hashes,
        claims: &Map<String, Value>,
        now: Time,
        state: &mut State,
    ) -> Result<Step, JwtRejection> {
        let issuer = self
            .policy
            .issuers
            .get(issuer_idx)
            .ok_or(TokenError::UnknownIssuer)?;
        let principal = jwt::principal_from_claims(claims, &issuer.rules, now.secs())?;
        if is_revoked(state, &principal, &hash.sha, now) {
            return Err(TokenError::Revoked.into());
        }
        let expiry = Time::from_secs(principal.expires_at.saturating_add(issuer.rules.leeway_s));
        let until = now.plus(self.policy.jwt_cache.max_ttl).min(expiry);
        state.shared_store(
            &self.policy,
            Space::Jwt,
            &hash.sha,
            Some(&principal),
            until,
            until,
        );
        let identity = Identity::new(&self.policy, principal);
        remember(state, hash, Ok(Arc::clone(&identity)), until, now);
        Ok(self.authorize(route, identity, false, now, state))
    }

    /// Continues a JWT after the issuer's JWKS fetch (its own, or the one it
    /// was parked on) ended.
    pub(super) fn resume_after_keys(
        &self,
        route: RouteRef,
        wait: KeyWait,
        outcome: &Outcome,
        now: Time,
        state: &mut State,
    ) -> Step {
        // A follower's leader (or the background job) applied the keys.
        let fetched = if wait.follower {
            matches!(outcome, Outcome::Response { status: 200, .. })
        } else {
            self.apply_jwks(wait.issuer, outcome, now, state)
        };
        let fetch = if fetched {
            KeyFetch::Succeeded
        } else {
            KeyFetch::Failed
        };
        let hash = Hashes {
            key: state.jwt_cache.key(wait.token.as_bytes()),
            sha: TokenHash::of(&wait.token),
        };
        self.decide_jwt(route, &wait.token, hash, fetch, now, state)
    }

    /// Continues a JWT after host crypto checked its signature.
    pub(super) fn resume_after_signature(
        &self,
        route: RouteRef,
        check: SignatureCheck,
        outcome: &Outcome,
        now: Time,
        state: &mut State,
    ) -> Step {
        let SignatureCheck {
            issuer,
            hash,
            claims,
        } = check;
        let result = match outcome {
            Outcome::Verified(true) => self.finish_jwt(route, issuer, hash, &claims, now, state),
            Outcome::Verified(false) => Err(TokenError::BadSignature.into()),
            // A host that cannot answer must not turn into an allow.
            _ => Err(JwtRejection::KeysUnavailable),
        };
        match result {
            Ok(step) => step,
            Err(rejection) => self.reject_jwt(route, hash, rejection, now, state),
        }
    }
}

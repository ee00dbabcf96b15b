//! Background work: planning JWKS refreshes and revocation-feed polls, and
//! applying what they bring back (new keys, revocations).

use std::sync::Arc;
use std::time::Duration;

use super::state::{FLIGHT_GRACE, State, in_flight};
use super::step::{BackgroundJob, DueCall, HttpCall, Outcome, Purpose};
use super::{Engine, Staleness};
use crate::keys::KeySet;
use crate::policy::Issuer;
use crate::revocation::{self, RevocationEvent};
use crate::time::Time;

/// How long after a failed background JWKS fetch the next one is planned.
const JWKS_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

impl Engine {
    /// Periodic calls that are due: JWKS refreshes and the revocation feed.
    pub fn due_calls(&self, now: Time, state: &mut State) -> Vec<DueCall> {
        state.started.get_or_insert(now);
        let mut out = Vec::new();
        for (idx, issuer) in self.policy.issuers.iter().enumerate() {
            let Some(call) = self.jwks_call(issuer) else {
                continue;
            };
            let Some(s) = state.issuers.get_mut(idx) else {
                continue;
            };
            if in_flight(s.in_flight_until, now) || now < s.next_refresh {
                continue;
            }
            s.last_attempt = Some(now);
            s.in_flight_until = Some(now.plus(call.timeout + FLIGHT_GRACE));
            state.stats.jwks_fetches += 1;
            out.push(DueCall {
                call,
                job: BackgroundJob::Jwks(idx),
            });
        }
        if let Some(feed) = &self.policy.revocation_feed {
            let f = &mut state.feed;
            if !in_flight(f.in_flight_until, now) && now >= f.next_poll {
                let up = &feed.endpoint;
                f.in_flight_until = Some(now.plus(up.timeout + FLIGHT_GRACE));
                f.next_poll = now.plus(feed.poll_interval);
                out.push(DueCall {
                    call: HttpCall {
                        purpose: Purpose::RevocationFeed,
                        upstream: up.upstream.clone(),
                        method: "GET",
                        path: revocation::poll_path(&up.path, state.revocation.cursor.as_deref()),
                        authority: up.authority.clone(),
                        headers: vec![("accept".into(), "application/json".into())],
                        body: Vec::new(),
                        timeout: up.timeout,
                    },
                    job: BackgroundJob::Feed,
                });
            }
        }
        out
    }

    /// The earliest time at which [`Engine::due_calls`] may have work, for
    /// adapters that sleep between ticks.
    pub fn next_due(&self, state: &State) -> Option<Time> {
        let jwks = self
            .policy
            .issuers
            .iter()
            .zip(&state.issuers)
            .filter(|(i, _)| i.jwks.is_some())
            .map(|(_, s)| s.next_refresh);
        let feed = self
            .policy
            .revocation_feed
            .as_ref()
            .map(|_| state.feed.next_poll);
        jwks.chain(feed).min()
    }

    /// Applies the result of a background call.
    pub fn complete(&self, job: BackgroundJob, outcome: Outcome, now: Time, state: &mut State) {
        match job {
            BackgroundJob::Jwks(idx) => {
                self.apply_jwks(idx, &outcome, now, state);
            }
            BackgroundJob::Feed => self.apply_feed_page(outcome, now, state),
        }
    }

    /// Applies one revocation-feed page: every event drops what the caches
    /// hold for the tokens it names.
    fn apply_feed_page(&self, outcome: Outcome, now: Time, state: &mut State) {
        state.feed.in_flight_until = None;
        let page = match outcome {
            Outcome::Response { status, body } => revocation::parse_page(status, &body).ok(),
            _ => None,
        };
        let Some(page) = page else {
            state.stats.feed_failures += 1;
            return;
        };
        for event in &page.events {
            self.apply_revocation(event, now, state);
        }
        state.revocation.cursor = Some(page.cursor);
        state.feed.synced_at = Some(now);
        if page.has_more {
            state.feed.next_poll = now;
        }
    }

    fn apply_revocation(&self, event: &RevocationEvent, now: Time, state: &mut State) {
        let recorded = state.revocation.record(event, now.secs());
        if let Some(hash) = recorded.hash {
            // The JWT cache is keyed otherwise: its hits check the
            // token's SHA-256 against the revocations.
            state.reference_cache.remove(&hash);
            state.shared_clear(&self.policy, &hash);
        }
        if recorded.overflowed {
            state.stats.revocations_overflowed += 1;
        }
        // A jti or sid event is not applied by scanning the caches (a page
        // of 1,000 events over full caches was ~2x10^7 comparisons): every
        // cache hit asks the revocation table, indexed by jti and sid.
        state.stats.revocations_applied += 1;
    }

    /// How old what the edge knows is: for each issuer with a JWKS endpoint,
    /// the seconds since its keys last arrived; and for the revocation feed,
    /// since its last page. What never arrived counts from the first
    /// background work. Alert on these: they grow while the identity host
    /// is unreachable, and the edge keeps serving what it has.
    pub fn staleness(&self, now: Time, state: &State) -> Staleness {
        let since = |at: Option<Time>| at.or(state.started).map_or(0, |t| now.since(t).as_secs());
        Staleness {
            jwks_age_s: self
                .policy
                .issuers
                .iter()
                .zip(&state.issuers)
                .enumerate()
                .filter(|(_, (issuer, _))| issuer.jwks.is_some())
                .map(|(i, (_, s))| (i, since(s.fetched_at)))
                .collect(),
            feed_age_s: self
                .policy
                .revocation_feed
                .as_ref()
                .map(|_| since(state.feed.synced_at)),
        }
    }

    /// The JWKS fetch of an issuer, if it has a JWKS endpoint.
    fn jwks_call(&self, issuer: &Issuer) -> Option<HttpCall> {
        let up = issuer.jwks.as_ref()?;
        Some(HttpCall {
            purpose: Purpose::Jwks,
            upstream: up.upstream.clone(),
            method: "GET",
            path: up.path.clone(),
            authority: up.authority.clone(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            timeout: up.timeout,
        })
    }

    /// A JWKS fetch for an unknown `kid`: one in flight per issuer, and at most one
    /// per cooldown.
    pub(super) fn jwks_call_on_demand(
        &self,
        idx: usize,
        issuer: &Issuer,
        now: Time,
        state: &mut State,
    ) -> Option<HttpCall> {
        let call = self.jwks_call(issuer)?;
        let s = state.issuers.get_mut(idx)?;
        if in_flight(s.in_flight_until, now) {
            return None;
        }
        if s.last_attempt
            .is_some_and(|t| now < t.plus(issuer.jwks_cooldown))
        {
            return None;
        }
        s.last_attempt = Some(now);
        s.in_flight_until = Some(now.plus(call.timeout + FLIGHT_GRACE));
        state.stats.jwks_fetches += 1;
        Some(call)
    }

    /// Applies a JWKS reply. Stale keys stay when the fetch fails. Returns whether
    /// the fetch succeeded.
    pub(super) fn apply_jwks(
        &self,
        idx: usize,
        outcome: &Outcome,
        now: Time,
        state: &mut State,
    ) -> bool {
        let Some(issuer) = self.policy.issuers.get(idx) else {
            return false;
        };
        let parsed = match outcome {
            Outcome::Response { status: 200, body } => {
                KeySet::from_jwks(body, &issuer.algorithms).ok()
            }
            _ => None,
        };
        let Some(s) = state.issuers.get_mut(idx) else {
            return false;
        };
        s.in_flight_until = None;
        match parsed {
            Some(set) if !set.is_empty() => {
                s.keys = Arc::new(issuer.inline_keys.merged(&set));
                s.fetched_at = Some(now);
                s.next_refresh = now.plus(issuer.jwks_refresh);
                true
            }
            _ => {
                s.next_refresh = now.plus(JWKS_RETRY_AFTER_FAILURE);
                state.stats.jwks_failures += 1;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    /// Ages count from the last success, and from the first background
    /// work while nothing has arrived; a failed fetch does not reset them.
    #[test]
    fn staleness_counts_from_the_last_success() {
        let policy = Policy::compile(include_str!("../../policies/erpnet.json")).unwrap();
        let engine = Engine::new(policy);
        let mut state = engine.new_state([7; 16]);
        let t = |s: u64| Time::from_secs(1_000 + s);
        let due = engine.due_calls(t(0), &mut state);
        assert_eq!(engine.staleness(t(0), &state).jwks_age_s, [(0, 0)]);
        let jwks = due
            .iter()
            .find(|d| d.call.purpose == Purpose::Jwks)
            .unwrap()
            .job;
        let body = br#"{"keys":[{"kty":"RSA","kid":"k","alg":"RS256","use":"sig","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}"#;
        let ok = Outcome::Response {
            status: 200,
            body: body.to_vec(),
        };
        engine.complete(jwks, ok, t(1), &mut state);
        let s = engine.staleness(t(11), &state);
        assert_eq!(s.jwks_age_s, [(0, 10)], "since the keys arrived");
        assert_eq!(s.feed_age_s, Some(11), "no page yet: since the start");
        engine.complete(BackgroundJob::Jwks(0), Outcome::Failed, t(20), &mut state);
        assert_eq!(engine.staleness(t(21), &state).jwks_age_s, [(0, 20)]);
        let page = Outcome::Response {
            status: 200,
            body: br#"{"cursor":"1","events":[]}"#.to_vec(),
        };
        engine.complete(BackgroundJob::Feed, page, t(30), &mut state);
        assert_eq!(engine.staleness(t(31), &state).feed_age_s, Some(1));
    }
}

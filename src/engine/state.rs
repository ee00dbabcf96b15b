//! What the engine remembers between requests: keys per issuer, the verdict
//! caches, revocations, calls in flight, the counters, and the shared cache
//! an adapter may attach behind the local ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CacheKey, TokenHash, TtlCache};
use crate::decision::Identity;
use crate::jwt::TokenError;
use crate::keys::KeySet;
use crate::policy::Policy;
use crate::policy::Sections;
use crate::principal::Principal;
use crate::revocation::RevocationState;
use crate::shared_cache::{self, SharedCache, SharedEntry, Space};
use crate::time::Time;

/// Grace added to a call's timeout before its single-flight slot is freed even
/// if the adapter never reports back.
pub(super) const FLIGHT_GRACE: Duration = Duration::from_secs(1);

/// Introspections in flight at once per state before expired entries are swept.
const FLIGHTS_SWEEP_AT: usize = 1024;

/// Counters for adapters to export as metrics (see [`Stats::counters`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Verified-JWT cache hits (positive or negative).
    pub jwt_cache_hits: u64,
    /// Verified-JWT cache misses.
    pub jwt_cache_misses: u64,
    /// Introspection cache hits.
    pub introspection_cache_hits: u64,
    /// Introspection cache misses.
    pub introspection_cache_misses: u64,
    /// Introspection calls asked for.
    pub introspection_calls: u64,
    /// Introspection calls that failed or timed out.
    pub introspection_failures: u64,
    /// JWKS fetches asked for.
    pub jwks_fetches: u64,
    /// JWKS fetches that failed.
    pub jwks_failures: u64,
    /// Revocation events applied.
    pub revocations_applied: u64,
    /// Revocation events that found their kind's table full of live ones:
    /// every token of that kind is refused until the event expires.
    pub revocations_overflowed: u64,
    /// Revocation-feed polls that failed.
    pub feed_failures: u64,
    /// Local cache misses answered by the shared cache.
    pub shared_cache_hits: u64,
    /// Local cache misses the shared cache could not answer either.
    pub shared_cache_misses: u64,
    /// Requests that waited on another request's call instead of making one.
    pub flights_joined: u64,
}

/// How many counters [`Stats::counters`] lists.
const COUNTERS: usize = 14;

impl Stats {
    /// Every counter under its metric name, in a fixed order: the one list
    /// adapters export, so none can forget a counter. Names are dotted and
    /// start with `erpgate.`; an adapter that needs another spelling derives
    /// it from these.
    pub fn counters(&self) -> [(&'static str, u64); COUNTERS] {
        // Destructured so that a new field cannot compile without a name here.
        let Stats {
            jwt_cache_hits,
            jwt_cache_misses,
            introspection_cache_hits,
            introspection_cache_misses,
            introspection_calls,
            introspection_failures,
            jwks_fetches,
            jwks_failures,
            revocations_applied,
            revocations_overflowed,
            feed_failures,
            shared_cache_hits,
            shared_cache_misses,
            flights_joined,
        } = *self;
        [
            ("erpgate.jwt_cache.hits", jwt_cache_hits),
            ("erpgate.jwt_cache.misses", jwt_cache_misses),
            ("erpgate.introspection_cache.hits", introspection_cache_hits),
            (
                "erpgate.introspection_cache.misses",
                introspection_cache_misses,
            ),
            ("erpgate.introspection.calls", introspection_calls),
            ("erpgate.introspection.failures", introspection_failures),
            ("erpgate.jwks.fetches", jwks_fetches),
            ("erpgate.jwks.failures", jwks_failures),
            ("erpgate.revocations.applied", revocations_applied),
            ("erpgate.revocations.overflowed", revocations_overflowed),
            ("erpgate.feed.failures", feed_failures),
            ("erpgate.shared_cache.hits", shared_cache_hits),
            ("erpgate.shared_cache.misses", shared_cache_misses),
            ("erpgate.single_flight.joined", flights_joined),
        ]
    }
}

/// An issuer's keys and when to fetch them again.
#[derive(Debug)]
pub(super) struct IssuerState {
    pub(super) keys: Arc<KeySet>,
    /// When a JWKS fetch last succeeded.
    pub(super) fetched_at: Option<Time>,
    pub(super) last_attempt: Option<Time>,
    pub(super) next_refresh: Time,
    pub(super) in_flight_until: Option<Time>,
}

/// When the revocation feed is next polled.
#[derive(Debug, Default)]
pub(super) struct FeedState {
    pub(super) next_poll: Time,
    pub(super) in_flight_until: Option<Time>,
    /// When a feed page last arrived whole.
    pub(super) synced_at: Option<Time>,
}

/// A remembered JWT verdict: the principal, or why the token was refused.
pub(super) type JwtVerdict = Result<Arc<Identity>, TokenError>;

/// A remembered JWT verdict with the token's SHA-256, which revocations
/// name tokens by (checked again on every hit).
#[derive(Debug, Clone)]
pub(super) struct JwtEntry {
    pub(super) sha: TokenHash,
    pub(super) verdict: JwtVerdict,
}

/// The JWT verdict cache, keyed by [`CacheKey`] under its own secret.
#[derive(Debug)]
pub(super) struct JwtCache {
    secret: [u8; 16],
    pub(super) entries: TtlCache<JwtEntry, CacheKey>,
}

impl JwtCache {
    /// The cache key of a token.
    pub(super) fn key(&self, token: &[u8]) -> CacheKey {
        CacheKey::of(&self.secret, token)
    }
}

/// The adapter's shared cache, if it attached one, and the namespace its
/// keys live in.
struct AttachedCache(Box<dyn SharedCache>, String);

impl std::fmt::Debug for AttachedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedCache")
    }
}

/// Everything the engine remembers between requests. The adapter owns it (one
/// per Envoy VM, one per worker isolate); the engine only reads and writes it.
#[derive(Debug)]
pub struct State {
    pub(super) issuers: Vec<IssuerState>,
    pub(super) jwt_cache: JwtCache,
    pub(super) reference_cache: TtlCache<Option<Arc<Identity>>>,
    pub(super) revocation: RevocationState,
    pub(super) feed: FeedState,
    /// Introspections in flight (single flight), until when.
    flights: HashMap<TokenHash, Time>,
    shared: Option<AttachedCache>,
    /// When this state first did background work: the age of what never
    /// arrived counts from here.
    pub(super) started: Option<Time>,
    /// Counters for metrics.
    pub stats: Stats,
    /// The `DPoP` presentation of the request being decided, if any.
    pub(super) presented: Option<Box<super::presented::Presented>>,
    /// DPoP proofs seen (single use).
    pub(super) replays: super::presented::Replays,
    /// Recent DPoP proof headers and the keys they carry.
    pub(super) proof_keys: crate::dpop::ProofKeys,
}

impl State {
    /// Fresh state for a policy: inline keys only, empty caches, the JWT
    /// cache keyed under `cache_secret`.
    pub(super) fn new(policy: &Policy, cache_secret: [u8; 16]) -> Self {
        State {
            issuers: policy
                .issuers
                .iter()
                .map(|i| IssuerState {
                    keys: Arc::new(i.inline_keys.clone()),
                    fetched_at: None,
                    last_attempt: None,
                    next_refresh: Time::default(),
                    in_flight_until: None,
                })
                .collect(),
            jwt_cache: JwtCache {
                secret: cache_secret,
                entries: TtlCache::new(policy.jwt_cache.max_entries),
            },
            reference_cache: TtlCache::new(
                policy
                    .introspection
                    .as_ref()
                    .map_or(1, |i| i.cache.max_entries),
            ),
            revocation: RevocationState::default(),
            feed: FeedState::default(),
            flights: HashMap::new(),
            shared: None,
            started: None,
            stats: Stats::default(),
            presented: None,
            replays: super::presented::Replays::new(policy.dpop.replay_cache_entries),
            proof_keys: crate::dpop::ProofKeys::new(),
        }
    }

    /// The secret the JWT cache is keyed under (kept across a reload).
    pub(super) fn jwt_cache_secret(&self) -> [u8; 16] {
        self.jwt_cache.secret
    }

    /// Backs the local caches with a cache shared across engine instances
    /// (Envoy: shared data across worker VMs). `deployment` names everything
    /// besides the policy that makes a verdict what it is (the clusters the
    /// calls go to, the introspection client); its keys are namespaced by the
    /// policy and all of it, so two plugins that share a VM id never read
    /// each other's verdicts unless they would reach them alike.
    pub fn attach_shared_cache(
        &mut self,
        policy: &Policy,
        deployment: &[&[u8]],
        cache: Box<dyn SharedCache>,
    ) {
        let namespace = shared_cache::namespace(&policy.fingerprint, deployment);
        self.shared = Some(AttachedCache(cache, namespace));
    }

    /// Takes over what `previous` (the state under the policy before a
    /// reload) remembers wherever the parts it depends on are unchanged:
    /// each unchanged issuer's keys; the JWT verdicts if no issuer, the JWT
    /// cache or the limits changed; the introspection verdicts (and the
    /// calls in flight) if introspection, issuers and limits did not; the
    /// revocation cursor if the feed did not. Revocations themselves are
    /// always kept (they are facts about tokens), and so are the counters.
    pub(super) fn adopt(&mut self, mut previous: State, before: &Sections, after: &Sections) {
        for (i, fingerprint) in after.issuers.iter().enumerate() {
            if let Some(j) = before.issuers.iter().position(|f| f == fingerprint)
                && let (Some(slot), Some(old)) =
                    (self.issuers.get_mut(i), previous.issuers.get_mut(j))
            {
                std::mem::swap(slot, old);
                // The previous plugin's fetch answers to nobody now.
                slot.in_flight_until = None;
            }
        }
        if before.jwt_verdicts == after.jwt_verdicts {
            std::mem::swap(&mut self.jwt_cache, &mut previous.jwt_cache);
        }
        if before.reference_verdicts == after.reference_verdicts {
            std::mem::swap(&mut self.reference_cache, &mut previous.reference_cache);
            std::mem::swap(&mut self.flights, &mut previous.flights);
        }
        let cursor = previous.revocation.cursor.take();
        std::mem::swap(&mut self.revocation, &mut previous.revocation);
        if before.feed == after.feed {
            self.revocation.cursor = cursor;
            std::mem::swap(&mut self.feed, &mut previous.feed);
            self.feed.in_flight_until = None;
        }
        self.started = previous.started;
        self.stats = previous.stats;
        // Proofs seen stay seen across a reload.
        self.replays.adopt(previous.replays);
    }

    /// Whether an introspection of `hash` is under way (single flight).
    pub(super) fn introspection_in_flight(&self, hash: &TokenHash, now: Time) -> bool {
        in_flight(self.flights.get(hash).copied(), now)
    }

    /// Records that this state leads the introspection of `hash` until `until`.
    pub(super) fn lead_introspection(&mut self, hash: TokenHash, until: Time, now: Time) {
        if self.flights.len() >= FLIGHTS_SWEEP_AT {
            self.flights.retain(|_, until| now < *until);
        }
        self.flights.insert(hash, until);
    }

    /// Ends the introspection flight of `hash`.
    pub(super) fn end_introspection(&mut self, hash: &TokenHash) {
        self.flights.remove(hash);
    }

    /// The shared cache's fresh entry for a local miss, if one is attached.
    pub(super) fn shared_load(
        &mut self,
        policy: &Policy,
        space: Space,
        hash: &TokenHash,
        now: Time,
    ) -> Option<SharedEntry> {
        let AttachedCache(store, namespace) = self.shared.as_mut()?;
        let key = shared_key(namespace, policy, space, hash);
        let found = shared_cache::load(store.as_mut(), &key, hash, now);
        if found.is_some() {
            self.stats.shared_cache_hits += 1;
        } else {
            self.stats.shared_cache_misses += 1;
        }
        found
    }

    /// Keeps the presented token's SHA-256 with its DPoP presentation, if
    /// it has one: the proof's `ath` is then checked without hashing the
    /// token again.
    pub(super) fn note_token_sha256(&mut self, sha: TokenHash) {
        if let Some(presented) = self.presented.as_deref_mut() {
            presented.token_sha256 = Some(sha);
        }
    }

    /// Records a DPoP proof in the shared store, if one is attached: false
    /// when another instance saw it first (or the store stays contended).
    pub(super) fn shared_first_use(
        &mut self,
        policy: &Policy,
        id: &[u8; 32],
        until: u64,
        now: Time,
    ) -> bool {
        let Some(AttachedCache(store, namespace)) = self.shared.as_mut() else {
            return true;
        };
        let key = shared_key(namespace, policy, Space::Dpop, &TokenHash(*id));
        shared_cache::first_use(store.as_mut(), &key, id, until, now.secs())
    }

    /// Publishes an entry to the shared cache, if one is attached.
    pub(super) fn shared_store(
        &mut self,
        policy: &Policy,
        space: Space,
        hash: &TokenHash,
        principal: Option<&Principal>,
        fresh_until: Time,
        stale_until: Time,
    ) {
        if let Some(AttachedCache(store, namespace)) = self.shared.as_mut() {
            let key = shared_key(namespace, policy, space, hash);
            shared_cache::store(
                store.as_mut(),
                &key,
                hash,
                principal,
                fresh_until,
                stale_until,
            );
        }
    }

    /// Drops a revoked token from both shared spaces, if a cache is attached.
    pub(super) fn shared_clear(&mut self, policy: &Policy, hash: &TokenHash) {
        if let Some(AttachedCache(store, namespace)) = self.shared.as_mut() {
            for space in [Space::Jwt, Space::Reference] {
                let key = shared_key(namespace, policy, space, hash);
                shared_cache::clear(store.as_mut(), &key, hash);
            }
        }
    }
}

/// The shared-cache slot key of a token in one space.
fn shared_key(namespace: &str, policy: &Policy, space: Space, hash: &TokenHash) -> String {
    let slots = match space {
        Space::Jwt => policy.jwt_cache.max_entries,
        Space::Reference => policy
            .introspection
            .as_ref()
            .map_or(1, |i| i.cache.max_entries),
        Space::Dpop => policy.dpop.replay_cache_entries / shared_cache::REPLAYS_PER_SLOT,
    };
    shared_cache::key(namespace, space, hash, slots)
}

/// Whether a call that holds its slot until `until` is still under way.
pub(super) fn in_flight(until: Option<Time>, now: Time) -> bool {
    until.is_some_and(|u| now < u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_listed_once() {
        let stats = Stats {
            jwt_cache_hits: 1,
            jwt_cache_misses: 2,
            introspection_cache_hits: 3,
            introspection_cache_misses: 4,
            introspection_calls: 5,
            introspection_failures: 6,
            jwks_fetches: 7,
            jwks_failures: 8,
            revocations_applied: 9,
            revocations_overflowed: 10,
            feed_failures: 11,
            shared_cache_hits: 12,
            shared_cache_misses: 13,
            flights_joined: 14,
        };
        let counters = stats.counters();
        let names: std::collections::HashSet<_> = counters.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), COUNTERS, "names are unique");
        let values: Vec<u64> = counters.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, (1..=14).collect::<Vec<u64>>(), "each field once");
        assert!(names.contains("erpgate.feed.failures"));
        assert!(names.iter().all(|n| n.starts_with("erpgate.")));
    }
}

//! The engine: the one entry point that decides a request. It never performs I/O;
//! when it needs outside data it returns a [`Step`] asking the adapter for exactly
//! one HTTP call (or one signature check), and the adapter resumes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cache::{TokenHash, TtlCache};
use crate::credential::{self, Credential};
use crate::decision::{self, Allow, Decision, Denial, Reason, Unavailable};
use crate::introspection;
use crate::jwt::{self, TokenError};
use crate::keys::{Algorithm, KeySet};
use crate::policy::{Access, DefaultAction, FailureMode, Issuer, LegacyMode, Policy, Route};
use crate::principal::{Principal, TokenKind};
use crate::request::Request;
use crate::revocation::{self, RevocationState};
use crate::tier::{self, SharedTier, Space};
use crate::time::Time;

/// How long after a failed background JWKS fetch the next one is planned.
const JWKS_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Grace added to a call's timeout before its single-flight slot is freed even
/// if the adapter never reports back.
const FLIGHT_GRACE: Duration = Duration::from_secs(1);

/// What an outbound call is for. The adapter adds client authentication to
/// introspection and feed calls; JWKS fetches are anonymous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// RFC 7662 introspection of a reference token.
    Introspection,
    /// A JWKS fetch for one issuer.
    Jwks,
    /// A poll of the revocation feed.
    RevocationFeed,
}

impl Purpose {
    /// Whether the adapter must add the introspection client credentials.
    pub fn needs_client_auth(self) -> bool {
        matches!(self, Purpose::Introspection | Purpose::RevocationFeed)
    }
}

/// One outbound HTTP call the engine asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// What it is for.
    pub purpose: Purpose,
    /// The named upstream (Envoy cluster, worker binding, or host base URL).
    pub upstream: String,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// `:authority`, when the policy sets one.
    pub authority: Option<String>,
    /// Request headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Request body. Holds the reference token for introspection: never log it.
    pub body: Vec<u8>,
    /// Give up after this long and resume with [`Outcome::Timeout`].
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCall")
            .field("purpose", &self.purpose)
            .field("upstream", &self.upstream)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A signature check the engine hands to host crypto (WebCrypto, Envoy's
/// `verify_signature`), when the adapter declared it for this algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// The algorithm bound to the key.
    pub alg: Algorithm,
    /// The public JWK.
    pub jwk: Value,
    /// The JWS signing input (`header.payload`, ASCII).
    pub signing_input: Vec<u8>,
    /// The raw signature.
    pub signature: Vec<u8>,
}

/// How an outbound call or host check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response.
    Response {
        /// Status code.
        status: u16,
        /// Body bytes.
        body: Vec<u8>,
    },
    /// No response within the call's timeout.
    Timeout,
    /// Connection failure, unknown upstream, or any other transport error.
    Failed,
    /// The host-crypto verdict for a [`Step::Verify`].
    Verified(bool),
}

/// An outbound call other requests may wait on instead of repeating it: one
/// introspection per token, one JWKS fetch per issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flight(FlightKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FlightKind {
    Introspection(TokenHash),
    Jwks(usize),
}

/// What the engine needs next.
#[derive(Debug)]
pub enum Step {
    /// Done.
    Decided(Decision),
    /// Perform this call, then [`Engine::resume`].
    Call {
        /// The call.
        call: HttpCall,
        /// Give this back to `resume`.
        pending: Pending,
    },
    /// Verify this signature with host crypto, then [`Engine::resume`] with
    /// [`Outcome::Verified`].
    Verify {
        /// The check.
        request: VerifyRequest,
        /// Give this back to `resume`.
        pending: Pending,
    },
    /// The call this request needs is already under way for another request
    /// (single flight, see [`Engine::with_single_flight`]). Park it; when
    /// that call's outcome arrives, [`Engine::resume`] it with the same
    /// outcome. Only engines with single flight on return this.
    Wait {
        /// The call being waited for; [`Pending::flight`] of the leader, or
        /// [`Job::flight`] of a background job, names the same one.
        flight: Flight,
        /// Give this back to `resume`.
        pending: Pending,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteRef {
    Index(usize),
    DefaultAuthenticated,
}

enum Waiting {
    Jwks {
        token: String,
        issuer: usize,
        /// Waits on another request's fetch instead of its own.
        follower: bool,
    },
    Introspection {
        hash: TokenHash,
        /// Waits on another request's introspection instead of its own.
        follower: bool,
    },
    Signature {
        issuer: usize,
        hash: TokenHash,
        claims: Map<String, Value>,
    },
}

/// A request suspended while its adapter performs a call. Opaque; holds the
/// token while a JWKS fetch is under way, so its `Debug` prints nothing of it.
pub struct Pending {
    route: RouteRef,
    waiting: Waiting,
}

impl Pending {
    /// The flight this request leads: followers parked on it must be resumed
    /// with the same outcome. `None` for followers and signature checks.
    pub fn flight(&self) -> Option<Flight> {
        match self.waiting {
            Waiting::Introspection {
                hash,
                follower: false,
            } => Some(Flight(FlightKind::Introspection(hash))),
            Waiting::Jwks {
                issuer,
                follower: false,
                ..
            } => Some(Flight(FlightKind::Jwks(issuer))),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.waiting {
            Waiting::Jwks { .. } => "jwks",
            Waiting::Introspection { .. } => "introspection",
            Waiting::Signature { .. } => "signature",
        };
        f.debug_struct("Pending")
            .field("waiting", &what)
            .finish_non_exhaustive()
    }
}

/// Periodic work planned by [`Engine::due_calls`].
#[derive(Debug)]
pub struct Background {
    /// The call to perform.
    pub call: HttpCall,
    /// Give this back to [`Engine::complete`].
    pub job: Job,
}

/// Identifies a background call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// JWKS refresh for the issuer at this index.
    Jwks(usize),
    /// A revocation-feed poll.
    Feed,
}

impl Job {
    /// The flight requests may be parked on while this job runs.
    pub fn flight(self) -> Option<Flight> {
        match self {
            Job::Jwks(issuer) => Some(Flight(FlightKind::Jwks(issuer))),
            Job::Feed => None,
        }
    }
}

/// Counters for adapters to export as metrics.
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
    /// Revocation-feed polls that failed.
    pub feed_failures: u64,
    /// Local cache misses answered by the shared tier.
    pub shared_cache_hits: u64,
    /// Local cache misses the shared tier could not answer either.
    pub shared_cache_misses: u64,
    /// Requests that waited on another request's call instead of making one.
    pub flights_joined: u64,
}

#[derive(Debug)]
struct IssuerState {
    keys: Arc<KeySet>,
    last_attempt: Option<Time>,
    next_refresh: Time,
    in_flight_until: Option<Time>,
}

#[derive(Debug, Default)]
struct FeedState {
    next_poll: Time,
    in_flight_until: Option<Time>,
}

type JwtVerdict = Result<Principal, TokenError>;

/// Introspections in flight at once per state before expired entries are swept.
const FLIGHTS_SWEEP_AT: usize = 1024;

/// The adapter's shared tier, if it attached one.
struct Tier(Box<dyn SharedTier>);

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedTier")
    }
}

/// Everything the engine remembers between requests. The adapter owns it (one
/// per Envoy VM, one per worker isolate); the engine only reads and writes it.
#[derive(Debug)]
pub struct State {
    issuers: Vec<IssuerState>,
    jwt_cache: TtlCache<JwtVerdict>,
    reference_cache: TtlCache<Option<Principal>>,
    revocation: RevocationState,
    feed: FeedState,
    /// Introspections in flight (single flight), until when.
    flights: HashMap<TokenHash, Time>,
    tier: Option<Tier>,
    /// Counters for metrics.
    pub stats: Stats,
}

impl State {
    /// Backs the local caches with a tier shared across engine instances
    /// (Envoy: shared data across worker VMs).
    pub fn attach_shared_tier(&mut self, tier: Box<dyn SharedTier>) {
        self.tier = Some(Tier(tier));
    }
}

fn in_flight(until: Option<Time>, now: Time) -> bool {
    until.is_some_and(|u| now < u)
}

/// Whether a path is unambiguous: absolute, no dot-segments (plain or
/// percent-encoded), no encoded slash or backslash, no empty inner segment,
/// no control characters.
pub fn path_is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/')
        || bytes
            .iter()
            .any(|&b| b <= 0x20 || b == 0x7f || b == b'\\' || b == b'#')
    {
        return false;
    }
    // Encoded '/', '\\' and NUL, in either case, without allocating.
    let encoded_separator = bytes.windows(3).any(|w| {
        w.first() == Some(&b'%')
            && matches!(
                (
                    w.get(1).map(u8::to_ascii_lowercase),
                    w.get(2).map(u8::to_ascii_lowercase)
                ),
                (Some(b'2'), Some(b'f')) | (Some(b'5'), Some(b'c')) | (Some(b'0'), Some(b'0'))
            )
    });
    if encoded_separator {
        return false;
    }
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if seg.is_empty() {
            if !last {
                return false;
            }
            continue;
        }
        if is_dot_segment(seg) {
            return false;
        }
    }
    true
}

/// `.` or `..`, with any dot possibly written `%2e` / `%2E`.
fn is_dot_segment(seg: &str) -> bool {
    let mut rest = seg.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest.first() == Some(&b'.') {
            rest = rest.get(1..).unwrap_or_default();
        } else if rest.len() >= 3
            && rest.first() == Some(&b'%')
            && rest.get(1) == Some(&b'2')
            && rest.get(2).map(u8::to_ascii_lowercase) == Some(b'e')
        {
            rest = rest.get(3..).unwrap_or_default();
        } else {
            return false;
        }
        dots += 1;
    }
    (1..=2).contains(&dots)
}

/// The decision engine for one compiled policy.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Arc<Policy>,
    host_crypto: Vec<Algorithm>,
    single_flight: bool,
}

impl Engine {
    /// An engine that verifies every signature in-process.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Arc::new(policy),
            host_crypto: Vec::new(),
            single_flight: false,
        }
    }

    /// Declares that the adapter parks requests on calls already under way:
    /// a request whose token is being introspected, or whose issuer's JWKS is
    /// being fetched, then gets [`Step::Wait`] instead of a second call (or,
    /// for keys, instead of a denial while the fetch runs).
    pub fn with_single_flight(mut self) -> Self {
        self.single_flight = true;
        self
    }

    /// Declares that the adapter verifies these algorithms with host crypto; the
    /// engine then returns [`Step::Verify`] for them. Shared-secret algorithms
    /// always stay in-process.
    pub fn with_host_crypto(mut self, algorithms: &[Algorithm]) -> Self {
        self.host_crypto = algorithms
            .iter()
            .copied()
            .filter(|a| !a.is_hmac())
            .collect();
        self
    }

    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Fresh state for one adapter instance.
    pub fn new_state(&self) -> State {
        let p = &self.policy;
        State {
            issuers: p
                .issuers
                .iter()
                .map(|i| IssuerState {
                    keys: Arc::new(i.inline_keys.clone()),
                    last_attempt: None,
                    next_refresh: Time::default(),
                    in_flight_until: None,
                })
                .collect(),
            jwt_cache: TtlCache::new(p.jwt_cache.max_entries),
            reference_cache: TtlCache::new(
                p.introspection.as_ref().map_or(1, |i| i.cache.max_entries),
            ),
            revocation: RevocationState::default(),
            feed: FeedState::default(),
            flights: HashMap::new(),
            tier: None,
            stats: Stats::default(),
        }
    }

    fn deny(&self, reason: Reason, route: RouteRef) -> Step {
        Step::Decided(Decision::Deny(Denial {
            reason,
            route: self.route_name(route),
        }))
    }

    fn route_name(&self, route: RouteRef) -> Option<String> {
        match route {
            RouteRef::Index(i) => self.policy.routes.get(i).map(|r| r.name.clone()),
            RouteRef::DefaultAuthenticated => None,
        }
    }

    fn allow(&self, route: RouteRef, principal: Option<Principal>, from_cache: bool) -> Step {
        let headers = decision::identity_headers(&self.policy, principal.as_ref());
        Step::Decided(Decision::Allow(Box::new(Allow {
            principal,
            route: self.route_name(route),
            headers,
            from_cache,
        })))
    }

    /// Route scopes and token kinds, checked on every request, cached or not.
    fn authorize(&self, route: RouteRef, principal: Principal, from_cache: bool) -> Step {
        let route_def: Option<&Route> = match route {
            RouteRef::Index(i) => self.policy.routes.get(i),
            RouteRef::DefaultAuthenticated => None,
        };
        if let Some(Route {
            access: Access::Protected { scopes, kinds },
            ..
        }) = route_def
        {
            if !kinds.contains(&principal.kind) {
                return self.deny(
                    Reason::TokenKindRefused(principal.kind, scopes.challenge()),
                    route,
                );
            }
            if !scopes.satisfied_by(&principal.scopes) {
                return self.deny(Reason::InsufficientScope(scopes.challenge()), route);
            }
        }
        self.allow(route, Some(principal), from_cache)
    }

    /// Decides a request, or asks for one outbound call first.
    pub fn start(&self, request: &Request<'_>, now: Time, state: &mut State) -> Step {
        let path = request.path_only();
        let route = match self.policy.match_route(request.method, path) {
            Some((i, _)) => RouteRef::Index(i),
            None => match self.policy.default {
                DefaultAction::Deny => {
                    let reason = if path_is_canonical(path) {
                        Reason::NoRoute
                    } else {
                        Reason::InvalidPath
                    };
                    return self.deny(reason, RouteRef::DefaultAuthenticated);
                }
                DefaultAction::Authenticated => RouteRef::DefaultAuthenticated,
            },
        };
        // Matching happened on the raw path; an ambiguous one is refused even when
        // it matched, so `/public/../admin` cannot ride a public prefix.
        if !path_is_canonical(path) {
            return self.deny(Reason::InvalidPath, route);
        }
        if let RouteRef::Index(i) = route
            && matches!(
                self.policy.routes.get(i).map(|r| &r.access),
                Some(Access::Public)
            )
        {
            return self.allow(route, None, false);
        }
        let credential = match credential::extract(request) {
            Ok(Some(c)) => c,
            Ok(None) => return self.deny(Reason::MissingCredential, route),
            Err(e) => return self.deny(Reason::Credential(e), route),
        };
        match credential {
            Credential::Basic(_) => self.legacy(self.policy.legacy.basic, route),
            Credential::ErpSession(_) => self.legacy(self.policy.legacy.erp_session, route),
            Credential::Jwt(token) => self.start_jwt(route, token, now, state),
            Credential::Reference(token, _) => self.start_reference(route, token, now, state),
        }
    }

    fn legacy(&self, mode: LegacyMode, route: RouteRef) -> Step {
        match mode {
            LegacyMode::Reject => self.deny(Reason::LegacyRejected, route),
            LegacyMode::PassThrough => self.allow(route, None, false),
        }
    }

    fn reject_jwt(
        &self,
        route: RouteRef,
        hash: TokenHash,
        error: TokenError,
        now: Time,
        state: &mut State,
    ) -> Step {
        let ttl = self.policy.jwt_cache.negative_ttl;
        if error.is_permanent() && !ttl.is_zero() {
            let until = now.plus(ttl);
            state
                .jwt_cache
                .insert(hash, Err(error.clone()), until, until, now);
        }
        self.deny(Reason::Token(error), route)
    }

    fn start_jwt(&self, route: RouteRef, token: &str, now: Time, state: &mut State) -> Step {
        let hash = TokenHash::of(token);
        if let Some(verdict) = state.jwt_cache.get(&hash, now).cloned() {
            state.stats.jwt_cache_hits += 1;
            return self.cached_jwt(route, hash, verdict, now, state);
        }
        state.stats.jwt_cache_misses += 1;
        if let Some(entry) = self.shared_load(Space::Jwt, &hash, now, state)
            && let Some(principal) = entry.principal
        {
            state.jwt_cache.insert(
                hash,
                Ok(principal.clone()),
                entry.fresh_until,
                entry.fresh_until,
                now,
            );
            return self.cached_jwt(route, hash, Ok(principal), now, state);
        }
        self.verify_jwt(route, token, hash, true, now, state)
    }

    /// A remembered verdict: revocations and the route are checked again.
    fn cached_jwt(
        &self,
        route: RouteRef,
        hash: TokenHash,
        verdict: JwtVerdict,
        now: Time,
        state: &mut State,
    ) -> Step {
        match verdict {
            Ok(principal) => {
                if state.revocation.jwt_revoked(
                    principal.jti.as_deref(),
                    principal.sid.as_deref(),
                    now.secs(),
                ) || state.revocation.token_revoked(&hash, now.secs())
                {
                    state.jwt_cache.remove(&hash);
                    self.reject_jwt(route, hash, TokenError::Revoked, now, state)
                } else {
                    self.authorize(route, principal, true)
                }
            }
            Err(error) => self.deny(Reason::Token(error), route),
        }
    }

    fn shared_key(&self, space: Space, hash: &TokenHash) -> String {
        let slots = match space {
            Space::Jwt => self.policy.jwt_cache.max_entries,
            Space::Reference => self
                .policy
                .introspection
                .as_ref()
                .map_or(1, |i| i.cache.max_entries),
        };
        tier::key(&self.policy.fingerprint, space, hash, slots)
    }

    /// The shared tier's fresh entry for a local miss, if a tier is attached.
    fn shared_load(
        &self,
        space: Space,
        hash: &TokenHash,
        now: Time,
        state: &mut State,
    ) -> Option<tier::Shared> {
        let Tier(store) = state.tier.as_mut()?;
        let found = tier::load(store.as_mut(), &self.shared_key(space, hash), hash, now);
        if found.is_some() {
            state.stats.shared_cache_hits += 1;
        } else {
            state.stats.shared_cache_misses += 1;
        }
        found
    }

    fn shared_store(
        &self,
        space: Space,
        hash: &TokenHash,
        principal: Option<&Principal>,
        fresh_until: Time,
        stale_until: Time,
        state: &mut State,
    ) {
        if let Some(Tier(store)) = state.tier.as_mut() {
            let key = self.shared_key(space, hash);
            tier::store(
                store.as_mut(),
                &key,
                hash,
                principal,
                fresh_until,
                stale_until,
            );
        }
    }

    /// Decodes, selects the key (fetching the JWKS at most once), verifies.
    fn verify_jwt(
        &self,
        route: RouteRef,
        token: &str,
        hash: TokenHash,
        may_fetch: bool,
        now: Time,
        state: &mut State,
    ) -> Step {
        let decoded = match jwt::decode(token, &self.policy.limits) {
            Ok(d) => d,
            Err(e) => return self.reject_jwt(route, hash, e, now, state),
        };
        let issuer_idx = match jwt::unverified_issuer(&decoded.claims)
            .map(|iss| self.policy.issuer(iss))
        {
            Ok(Some((idx, _))) => idx,
            Ok(None) => return self.reject_jwt(route, hash, TokenError::UnknownIssuer, now, state),
            Err(e) => return self.reject_jwt(route, hash, e, now, state),
        };
        let Some(issuer) = self.policy.issuers.get(issuer_idx) else {
            return self.reject_jwt(route, hash, TokenError::UnknownIssuer, now, state);
        };
        if !issuer.algorithms.contains(&decoded.header.alg) {
            return self.reject_jwt(route, hash, TokenError::AlgorithmNotAllowed, now, state);
        }
        if let Some(required) = &issuer.required_typ
            && !jwt::typ_matches(decoded.header.typ.as_deref(), required)
        {
            return self.reject_jwt(route, hash, TokenError::WrongType, now, state);
        }
        let Some(issuer_state) = state.issuers.get(issuer_idx) else {
            return self.reject_jwt(route, hash, TokenError::UnknownIssuer, now, state);
        };
        let keys = Arc::clone(&issuer_state.keys);
        let kid = decoded.header.kid.as_deref();
        let Some(key) = keys.select(kid) else {
            if kid.is_none() && keys.keys().len() > 1 {
                return self.reject_jwt(route, hash, TokenError::KidRequired, now, state);
            }
            if may_fetch {
                if let Some(call) = self.jwks_call_on_demand(issuer_idx, issuer, now, state) {
                    return Step::Call {
                        call,
                        pending: Pending {
                            route,
                            waiting: Waiting::Jwks {
                                token: token.to_owned(),
                                issuer: issuer_idx,
                                follower: false,
                            },
                        },
                    };
                }
                if self.single_flight
                    && state
                        .issuers
                        .get(issuer_idx)
                        .is_some_and(|s| in_flight(s.in_flight_until, now))
                {
                    state.stats.flights_joined += 1;
                    return Step::Wait {
                        flight: Flight(FlightKind::Jwks(issuer_idx)),
                        pending: Pending {
                            route,
                            waiting: Waiting::Jwks {
                                token: token.to_owned(),
                                issuer: issuer_idx,
                                follower: true,
                            },
                        },
                    };
                }
            }
            return if keys.is_empty() {
                self.deny(Reason::Unavailable(Unavailable::KeysUnavailable), route)
            } else {
                self.reject_jwt(route, hash, TokenError::UnknownKey, now, state)
            };
        };
        if key.algorithm() != decoded.header.alg {
            return self.reject_jwt(route, hash, TokenError::AlgorithmMismatch, now, state);
        }
        if self.host_crypto.contains(&key.algorithm())
            && let Some(jwk) = key.public_jwk()
        {
            return Step::Verify {
                request: VerifyRequest {
                    alg: key.algorithm(),
                    jwk: jwk.clone(),
                    signing_input: decoded.signing_input.as_bytes().to_vec(),
                    signature: decoded.signature,
                },
                pending: Pending {
                    route,
                    waiting: Waiting::Signature {
                        issuer: issuer_idx,
                        hash,
                        claims: decoded.claims,
                    },
                },
            };
        }
        if !key.verify(decoded.signing_input.as_bytes(), &decoded.signature) {
            return self.reject_jwt(route, hash, TokenError::BadSignature, now, state);
        }
        self.finish_jwt(route, issuer_idx, hash, &decoded.claims, now, state)
    }

    fn finish_jwt(
        &self,
        route: RouteRef,
        issuer_idx: usize,
        hash: TokenHash,
        claims: &Map<String, Value>,
        now: Time,
        state: &mut State,
    ) -> Step {
        let Some(issuer) = self.policy.issuers.get(issuer_idx) else {
            return self.reject_jwt(route, hash, TokenError::UnknownIssuer, now, state);
        };
        let principal = match jwt::principal_from_claims(claims, &issuer.rules, now.secs()) {
            Ok(p) => p,
            Err(e) => return self.reject_jwt(route, hash, e, now, state),
        };
        if state.revocation.jwt_revoked(
            principal.jti.as_deref(),
            principal.sid.as_deref(),
            now.secs(),
        ) || state.revocation.token_revoked(&hash, now.secs())
        {
            return self.reject_jwt(route, hash, TokenError::Revoked, now, state);
        }
        let expiry = Time::from_secs(principal.expires_at.saturating_add(issuer.rules.leeway_s));
        let until = now.plus(self.policy.jwt_cache.max_ttl).min(expiry);
        state
            .jwt_cache
            .insert(hash, Ok(principal.clone()), until, until, now);
        self.shared_store(Space::Jwt, &hash, Some(&principal), until, until, state);
        self.authorize(route, principal, false)
    }

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
    fn jwks_call_on_demand(
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
    fn apply_jwks(&self, idx: usize, outcome: &Outcome, now: Time, state: &mut State) -> bool {
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

    fn start_reference(&self, route: RouteRef, token: &str, now: Time, state: &mut State) -> Step {
        let hash = TokenHash::of(token);
        let Some(intro) = &self.policy.introspection else {
            return self.deny(Reason::ReferenceTokensNotAccepted, route);
        };
        if state.revocation.token_revoked(&hash, now.secs()) {
            state.reference_cache.remove(&hash);
            return self.deny(Reason::InactiveReference, route);
        }
        if let Some(cached) = state.reference_cache.get(&hash, now).cloned() {
            state.stats.introspection_cache_hits += 1;
            return match cached {
                Some(principal) if principal.expires_at > now.secs() => {
                    self.authorize(route, principal, true)
                }
                _ => self.deny(Reason::InactiveReference, route),
            };
        }
        state.stats.introspection_cache_misses += 1;
        if let Some(entry) = self.shared_load(Space::Reference, &hash, now, state) {
            return match entry.principal {
                Some(principal)
                    if principal.expires_at > now.secs()
                        && !state.revocation.jwt_revoked(
                            principal.jti.as_deref(),
                            principal.sid.as_deref(),
                            now.secs(),
                        ) =>
                {
                    state.reference_cache.insert(
                        hash,
                        Some(principal.clone()),
                        entry.fresh_until,
                        entry.stale_until,
                        now,
                    );
                    self.authorize(route, principal, true)
                }
                _ => self.deny(Reason::InactiveReference, route),
            };
        }
        let up = &intro.endpoint;
        if self.single_flight {
            if in_flight(state.flights.get(&hash).copied(), now) {
                state.stats.flights_joined += 1;
                return Step::Wait {
                    flight: Flight(FlightKind::Introspection(hash)),
                    pending: Pending {
                        route,
                        waiting: Waiting::Introspection {
                            hash,
                            follower: true,
                        },
                    },
                };
            }
            if state.flights.len() >= FLIGHTS_SWEEP_AT {
                state.flights.retain(|_, until| now < *until);
            }
            state
                .flights
                .insert(hash, now.plus(up.timeout + FLIGHT_GRACE));
        }
        state.stats.introspection_calls += 1;
        Step::Call {
            call: HttpCall {
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
            },
            pending: Pending {
                route,
                waiting: Waiting::Introspection {
                    hash,
                    follower: false,
                },
            },
        }
    }

    /// Applies an introspection outcome. A follower (single flight) first
    /// looks for what its leader cached, and does not count the call.
    fn finish_reference(
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
                return match cached {
                    Some(principal) if principal.expires_at > now.secs() => {
                        self.authorize(route, principal, true)
                    }
                    _ => self.deny(Reason::InactiveReference, route),
                };
            }
        } else {
            state.flights.remove(&hash);
        }
        let cache = intro.cache;
        let failure = match outcome {
            Outcome::Response { status, body } => {
                match introspection::parse_response(status, &body) {
                    Ok(reply) if !reply.active => {
                        let until = now.plus(cache.negative_ttl);
                        state.reference_cache.insert(hash, None, until, until, now);
                        if until > now {
                            self.shared_store(Space::Reference, &hash, None, until, until, state);
                        }
                        return self.deny(Reason::InactiveReference, route);
                    }
                    Ok(reply) => match reply.reference_principal() {
                        Ok(p) if !matches!(p.kind, TokenKind::Pat | TokenKind::Sat) => {
                            Unavailable::IntrospectionFailed
                        }
                        Ok(p)
                            if p.expires_at <= now.secs()
                                || state.revocation.token_revoked(&hash, now.secs()) =>
                        {
                            return self.deny(Reason::InactiveReference, route);
                        }
                        Ok(principal) => {
                            let expiry = Time::from_secs(principal.expires_at);
                            let fresh = now.plus(cache.max_ttl).min(expiry);
                            let stale = fresh.plus(cache.max_stale).min(expiry);
                            state.reference_cache.insert(
                                hash,
                                Some(principal.clone()),
                                fresh,
                                stale,
                                now,
                            );
                            if fresh > now {
                                self.shared_store(
                                    Space::Reference,
                                    &hash,
                                    Some(&principal),
                                    fresh,
                                    stale,
                                    state,
                                );
                            }
                            return self.authorize(route, principal, false);
                        }
                        Err(_) => Unavailable::IntrospectionFailed,
                    },
                    Err(_) => Unavailable::IntrospectionFailed,
                }
            }
            Outcome::Timeout => Unavailable::IntrospectionTimeout,
            Outcome::Failed | Outcome::Verified(_) => Unavailable::IntrospectionFailed,
        };
        if !follower {
            state.stats.introspection_failures += 1;
        }
        if self.policy.failure_mode == FailureMode::ServeStale
            && let Some(Some(principal)) = state.reference_cache.get_stale(&hash, now).cloned()
            && principal.expires_at > now.secs()
        {
            return self.authorize(route, principal, true);
        }
        self.deny(Reason::Unavailable(failure), route)
    }

    /// Continues a request after its call or host check.
    pub fn resume(&self, pending: Pending, outcome: Outcome, now: Time, state: &mut State) -> Step {
        let route = pending.route;
        match pending.waiting {
            Waiting::Introspection { hash, follower } => {
                self.finish_reference(route, hash, outcome, follower, now, state)
            }
            Waiting::Jwks {
                token,
                issuer,
                follower,
            } => {
                // A follower's leader (or the background job) applied the keys.
                let fetched = if follower {
                    matches!(outcome, Outcome::Response { status: 200, .. })
                } else {
                    self.apply_jwks(issuer, &outcome, now, state)
                };
                let hash = TokenHash::of(&token);
                match self.verify_jwt(route, &token, hash, false, now, state) {
                    // The kid is still unknown because the fetch failed: the key
                    // may exist, so this is an outage, not a bad token.
                    Step::Decided(Decision::Deny(Denial {
                        reason: Reason::Token(TokenError::UnknownKey),
                        ..
                    })) if !fetched => {
                        state.jwt_cache.remove(&hash);
                        self.deny(Reason::Unavailable(Unavailable::KeysUnavailable), route)
                    }
                    step => step,
                }
            }
            Waiting::Signature {
                issuer,
                hash,
                claims,
            } => match outcome {
                Outcome::Verified(true) => {
                    self.finish_jwt(route, issuer, hash, &claims, now, state)
                }
                Outcome::Verified(false) => {
                    self.reject_jwt(route, hash, TokenError::BadSignature, now, state)
                }
                // A host that cannot answer must not turn into an allow.
                _ => self.deny(Reason::Unavailable(Unavailable::KeysUnavailable), route),
            },
        }
    }

    /// Forgets a request whose call will never report back (its stream was
    /// reset): the flight it led ends, so the next request makes the call.
    /// Followers parked on that flight should be resumed with
    /// [`Outcome::Failed`].
    pub fn abandon(&self, pending: Pending, state: &mut State) {
        match pending.waiting {
            Waiting::Introspection {
                hash,
                follower: false,
            } => {
                state.flights.remove(&hash);
            }
            Waiting::Jwks {
                issuer,
                follower: false,
                ..
            } => {
                if let Some(s) = state.issuers.get_mut(issuer) {
                    s.in_flight_until = None;
                }
            }
            _ => {}
        }
    }

    /// Periodic calls that are due: JWKS refreshes and the revocation feed.
    pub fn due_calls(&self, now: Time, state: &mut State) -> Vec<Background> {
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
            out.push(Background {
                call,
                job: Job::Jwks(idx),
            });
        }
        if let Some(feed) = &self.policy.revocation_feed {
            let f = &mut state.feed;
            if !in_flight(f.in_flight_until, now) && now >= f.next_poll {
                let up = &feed.endpoint;
                f.in_flight_until = Some(now.plus(up.timeout + FLIGHT_GRACE));
                f.next_poll = now.plus(feed.poll_interval);
                out.push(Background {
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
                    job: Job::Feed,
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
    pub fn complete(&self, job: Job, outcome: Outcome, now: Time, state: &mut State) {
        match job {
            Job::Jwks(idx) => {
                self.apply_jwks(idx, &outcome, now, state);
            }
            Job::Feed => {
                state.feed.in_flight_until = None;
                let page = match outcome {
                    Outcome::Response { status, body } => {
                        revocation::parse_page(status, &body).ok()
                    }
                    _ => None,
                };
                let Some(page) = page else {
                    state.stats.feed_failures += 1;
                    return;
                };
                let now_s = now.secs();
                for event in &page.events {
                    if let Some(hash) = state.revocation.record(event, now_s) {
                        state.reference_cache.remove(&hash);
                        state.jwt_cache.remove(&hash);
                        if state.tier.is_some() {
                            let keys = [
                                self.shared_key(Space::Jwt, &hash),
                                self.shared_key(Space::Reference, &hash),
                            ];
                            if let Some(Tier(store)) = state.tier.as_mut() {
                                for key in &keys {
                                    tier::clear(store.as_mut(), key, &hash);
                                }
                            }
                        }
                    }
                    let (jti, sid) = match event.kind {
                        revocation::RevocationKind::Jti => (Some(event.value.as_str()), None),
                        revocation::RevocationKind::Sid => (None, Some(event.value.as_str())),
                        revocation::RevocationKind::TokenSha256 => (None, None),
                    };
                    if jti.is_some() || sid.is_some() {
                        let hit = |p: &Principal| {
                            (jti.is_some() && p.jti.as_deref() == jti)
                                || (sid.is_some() && p.sid.as_deref() == sid)
                        };
                        state.jwt_cache.remove_where(|v| v.as_ref().is_ok_and(hit));
                        state
                            .reference_cache
                            .remove_where(|v| v.as_ref().is_some_and(hit));
                    }
                    state.stats.revocations_applied += 1;
                }
                state.revocation.cursor = Some(page.cursor);
                if page.has_more {
                    state.feed.next_poll = now;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        assert!(path_is_canonical("/api/domain/odata/Crm_Customers"));
        assert!(path_is_canonical("/api/"));
        assert!(path_is_canonical("/"));
        for bad in [
            "api",
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a%2Fb",
            "/a\\b",
            "/a//b",
            "/a b",
            "/a/..",
        ] {
            assert!(!path_is_canonical(bad), "{bad}");
        }
    }
}

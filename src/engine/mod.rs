//! The engine: the one entry point that decides a request. It never performs I/O;
//! when it needs outside data it returns a [`Step`] asking the adapter for exactly
//! one HTTP call (or one signature check), and the adapter resumes it.
//!
//! The work is split by path: `step` is the protocol with the adapter,
//! `jwt` and `reference` decide the two kinds of bearer token, `background`
//! plans and applies JWKS refreshes and revocation-feed polls, and `state`
//! is what the engine remembers between requests.

mod background;
mod dpop;
mod jwt;
mod presented;
mod reference;
mod state;
mod step;

use std::sync::Arc;

use crate::credential::{self, Credential};
use crate::decision::{self, Allow, Decision, Denial, Identity, Reason};
use crate::keys::Algorithm;
use crate::odata::ODataError;
use crate::policy::{Access, DefaultAction, LegacyMode, Policy, Route};
use crate::principal::Principal;
use crate::request::{Request, normalized_path, path_is_canonical};
use crate::time::Time;

pub use state::{State, Stats};
pub use step::{
    BackgroundJob, DueCall, Flight, HttpCall, Outcome, Purpose, Step, Suspended, VerifyRequest,
};

use step::{Awaited, RouteRef};

/// The decision engine for one compiled policy.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Arc<Policy>,
    host_crypto: Vec<Algorithm>,
    single_flight: bool,
    /// The key DPoP server nonces are minted under, when the policy asks
    /// for nonces.
    nonce_key: Option<crate::dpop::NonceKey>,
}

/// How old the keys and revocations an engine works with are, in seconds
/// ([`Engine::staleness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staleness {
    /// (issuer index, seconds since its JWKS last arrived), for issuers
    /// that fetch one.
    pub jwks_age_s: Vec<(usize, u64)>,
    /// Seconds since the last revocation-feed page, if the policy polls one.
    pub feed_age_s: Option<u64>,
}

impl Engine {
    /// An engine that verifies every signature in-process.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Arc::new(policy),
            host_crypto: Vec::new(),
            single_flight: false,
            nonce_key: None,
        }
    }

    /// The key DPoP server nonces are minted under (see the policy's
    /// `dpop.nonces`). Every instance that should accept another's nonces
    /// (Envoy's VMs, replicas, worker isolates) needs the same key.
    pub fn with_dpop_nonce_key(mut self, key: crate::dpop::NonceKey) -> Self {
        self.nonce_key = Some(key);
        self
    }

    /// Whether the policy asks for DPoP server nonces and no key was given:
    /// an adapter refuses such a configuration, naming its key setting.
    /// (Should one not, proofs are refused `no_decision`: never allowed.)
    pub fn lacks_nonce_key(&self) -> bool {
        self.policy.dpop.nonces && self.nonce_key.is_none()
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

    /// The state for this engine after a reload from `before`'s policy:
    /// `previous` (the state `before` used) keeps everything whose policy
    /// parts did not change (see [`crate::policy::Sections`]), so a route
    /// edit drops no cache, key or revocation cursor.
    pub fn adopt(&self, before: &Engine, previous: State) -> State {
        let mut state = State::new(&self.policy, previous.jwt_cache_secret());
        state.adopt(previous, &before.policy.sections, &self.policy.sections);
        state
    }

    /// Fresh state for one adapter instance. `cache_secret` keys the JWT
    /// verdict cache ([`crate::cache::CacheKey`]): the adapter draws it at
    /// random (the core has no randomness) and it never leaves the state.
    pub fn new_state(&self, cache_secret: [u8; 16]) -> State {
        State::new(&self.policy, cache_secret)
    }

    /// Decides a request, or asks for one outbound call first.
    pub fn start(&self, request: &Request<'_>, now: Time, state: &mut State) -> Step {
        let folded = decision::folded_identity_headers(&self.policy, request.headers);
        state.presented = None;
        let step = self.start_unfolded(request, now, state);
        carry(step, folded, state.presented.take())
    }

    fn start_unfolded(&self, request: &Request<'_>, now: Time, state: &mut State) -> Step {
        if let Some(metadata) = &self.policy.protected_resource
            && matches!(request.method, "GET" | "HEAD")
            && metadata.serves(request.path_only())
        {
            let head = request.method == "HEAD";
            return Step::Decided(Decision::Answer(decision::metadata_response(
                metadata, head,
            )));
        }
        let route = match self.route_for(request) {
            Ok(route) => route,
            Err((reason, route)) => return self.deny(reason, route),
        };
        if self.is_public(route) {
            return self.allow(route, None, false);
        }
        // A token seen before is looked up before it is parsed.
        if let Some(token) = credential::cached_bearer(request)
            && let Some(step) = self.jwt_cache_hit(route, token, now, state)
        {
            return step;
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
            Credential::Dpop(token) => self.start_dpop(route, request, token, now, state),
        }
    }

    /// The route a request falls under, or why it is refused (with the
    /// route it is refused on) when none may take it or its path is
    /// ambiguous.
    fn route_for(&self, request: &Request<'_>) -> Result<RouteRef, (Reason, RouteRef)> {
        // Routes match the path the upstream will read, never the raw bytes.
        let Some(normalized) = normalized_path(request.path_only()) else {
            return Err((Reason::InvalidPath, RouteRef::DEFAULT_AUTHENTICATED));
        };
        let path = normalized.as_ref();
        let mut route = match self.policy.match_route(request.method, path) {
            Some((i, _)) => RouteRef::index(i),
            None => match self.policy.default {
                DefaultAction::Deny => {
                    let reason = if path_is_canonical(path) {
                        Reason::NoRoute
                    } else {
                        Reason::InvalidPath
                    };
                    return Err((reason, RouteRef::DEFAULT_AUTHENTICATED));
                }
                DefaultAction::Authenticated => RouteRef::DEFAULT_AUTHENTICATED,
            },
        };
        // Matching happened on the raw path; an ambiguous one is refused even when
        // it matched, so `/public/../admin` cannot ride a public prefix.
        if !path_is_canonical(path) {
            return Err((Reason::InvalidPath, route));
        }
        route.also = self.odata_routes(request, path).map_err(|r| (r, route))?;
        Ok(route)
    }

    /// How large a body the engine must see to decide this request, when it
    /// must see one: an OData `$batch` (decided on its inner requests). The
    /// adapter buffers up to that many bytes, refuses a larger body with
    /// 413, and passes it with [`Request::with_body`].
    pub fn body_limit(&self, request: &Request<'_>) -> Option<usize> {
        // Every adapter asks on every request: only a POST can be a $batch,
        // so nothing else pays for normalizing and folding its path.
        if request.method != "POST" {
            return None;
        }
        let odata = self.policy.odata.as_ref()?;
        let path = normalized_path(request.path_only())?;
        let resource = odata.resource(&path)?;
        odata
            .is_batch(request.method, resource)
            .then_some(odata.max_batch_bytes)
    }

    /// The routes of every entity set an OData request reaches beyond its
    /// own path, as bits; `Err` when one has no route and the default is
    /// deny, or the request cannot be read.
    fn odata_routes(&self, request: &Request<'_>, path: &str) -> Result<u128, Reason> {
        let Some(odata) = &self.policy.odata else {
            return Ok(0);
        };
        let Some(resource) = odata.resource(path) else {
            return Ok(0);
        };
        let reaches = if odata.is_batch(request.method, resource) {
            let body = request
                .body
                .ok_or(Reason::InvalidOData(ODataError::BodyNotInspected))?;
            let content_type = request
                .header_values("content-type")
                .next()
                .unwrap_or_default();
            odata.batch_reaches(content_type, body)
        } else {
            odata.reaches(request.method, resource, request.query())
        }
        .map_err(Reason::InvalidOData)?;
        let mut also = 0u128;
        let mut target = String::new();
        for reach in reaches {
            target.clear();
            target.push_str(&odata.service_root);
            target.push_str(&reach.entity_set);
            match self.policy.match_route(&reach.method, &target) {
                Some((i, _)) if i < 128 => also |= 1u128 << i,
                Some(_) => return Err(Reason::NoRoute),
                None if self.policy.default == DefaultAction::Deny => return Err(Reason::NoRoute),
                None => {}
            }
        }
        Ok(also)
    }

    fn is_public(&self, route: RouteRef) -> bool {
        matches!(
            self.route_def(route).map(|r| &r.access),
            Some(Access::Public)
        )
    }

    fn legacy(&self, mode: LegacyMode, route: RouteRef) -> Step {
        match mode {
            LegacyMode::Reject => self.deny(Reason::LegacyRejected, route),
            LegacyMode::PassThrough => self.allow(route, None, false),
        }
    }

    /// Continues a request after its call or host check.
    pub fn resume(
        &self,
        pending: Suspended,
        outcome: Outcome,
        now: Time,
        state: &mut State,
    ) -> Step {
        let route = pending.route;
        state.presented = pending.presented;
        let step = match pending.awaited {
            Awaited::Introspection { hash, follower } => {
                self.finish_reference(route, hash, outcome, follower, now, state)
            }
            Awaited::Keys(wait) => self.resume_after_keys(route, wait, &outcome, now, state),
            Awaited::Signature(check) => {
                self.resume_after_signature(route, check, &outcome, now, state)
            }
            Awaited::Proof(wait) => self.resume_after_proof(route, *wait, &outcome, now, state),
        };
        carry(step, pending.folded, state.presented.take())
    }

    /// Forgets a request whose call will never report back (its stream was
    /// reset): the flight it led ends, so the next request makes the call.
    /// Followers parked on that flight should be resumed with
    /// [`Outcome::Failed`].
    pub fn abandon(&self, pending: Suspended, state: &mut State) {
        match pending.awaited {
            Awaited::Introspection {
                hash,
                follower: false,
            } => state.end_introspection(&hash),
            Awaited::Keys(step::KeyWait {
                issuer,
                follower: false,
                ..
            }) => {
                if let Some(s) = state.issuers.get_mut(issuer) {
                    s.in_flight_until = None;
                }
            }
            _ => {}
        }
    }

    fn route_def(&self, route: RouteRef) -> Option<&Route> {
        route.index.and_then(|i| self.policy.routes.get(i))
    }

    fn route_name(&self, route: RouteRef) -> Option<String> {
        self.route_def(route).map(|r| r.name.clone())
    }

    /// Whether the route (or, with none, the policy) is enforced rather
    /// than in shadow mode.
    fn enforced(&self, route: RouteRef) -> bool {
        self.route_def(route)
            .map_or(self.policy.enforce, |r| r.enforce)
    }

    fn deny(&self, reason: Reason, route: RouteRef) -> Step {
        self.deny_for(reason, route, None)
    }

    /// A denial; in shadow mode, an allow that carries it and touches no
    /// header.
    fn deny_for(&self, reason: Reason, route: RouteRef, principal: Option<&Principal>) -> Step {
        let denial = Denial {
            reason,
            route: self.route_name(route),
            principal: principal.map(|p| Box::new(p.clone())),
        };
        if self.enforced(route) {
            return Step::Decided(Decision::Deny(denial));
        }
        Step::Decided(Decision::Allow(Box::new(Allow {
            identity: None,
            route: denial.route.clone(),
            headers: decision::HeaderEdits::default(),
            from_cache: false,
            enforced: false,
            would_deny: Some(denial),
        })))
    }

    fn allow(&self, route: RouteRef, identity: Option<Arc<Identity>>, from_cache: bool) -> Step {
        Step::Decided(Decision::Allow(Box::new(Allow {
            identity,
            route: self.route_name(route),
            headers: decision::HeaderEdits {
                remove: Arc::clone(&self.policy.headers.strip),
            },
            from_cache,
            enforced: self.enforced(route),
            would_deny: None,
        })))
    }

    /// Route scopes and token kinds, checked on every request, cached or
    /// not: the matched route's, then those of every route the request
    /// reaches through OData (a denial names the route that refused); then
    /// the token's binding ([`Engine::bind`]).
    fn authorize(
        &self,
        route: RouteRef,
        identity: Arc<Identity>,
        from_cache: bool,
        now: Time,
        state: &mut State,
    ) -> Step {
        let principal = &identity.principal;
        for check in route.with_reached() {
            if let Some(Route {
                access: Access::Protected { scopes, kinds },
                ..
            }) = self.route_def(check)
            {
                let refusing = RouteRef { also: 0, ..check };
                if !kinds.contains(&principal.kind) {
                    let reason = Reason::TokenKindRefused(principal.kind, scopes.challenge());
                    return self.deny_for(reason, refusing, Some(principal));
                }
                if !scopes.satisfied_by(&principal.scopes) {
                    let reason = Reason::InsufficientScope(scopes.challenge());
                    return self.deny_for(reason, refusing, Some(principal));
                }
            }
        }
        self.bind(route, identity, from_cache, now, state)
    }
}

/// Carries what the request brought to its allow, or keeps it in the
/// suspended request until then: its folded identity-header spellings
/// (added to the removals) and its `DPoP` presentation.
fn carry(step: Step, folded: Vec<String>, presented: Option<Box<presented::Presented>>) -> Step {
    match step {
        // A shadow denial touches no header.
        Step::Decided(Decision::Allow(mut allow))
            if allow.would_deny.is_none() && !folded.is_empty() =>
        {
            let mut remove = allow.headers.remove.to_vec();
            remove.extend(folded);
            allow.headers.remove = remove.into();
            Step::Decided(Decision::Allow(allow))
        }
        decided @ Step::Decided(_) => decided,
        Step::Call { call, mut pending } => {
            (pending.folded, pending.presented) = (folded, presented);
            Step::Call { call, pending }
        }
        Step::Verify {
            request,
            mut pending,
        } => {
            (pending.folded, pending.presented) = (folded, presented);
            Step::Verify { request, pending }
        }
        Step::Wait {
            flight,
            mut pending,
        } => {
            (pending.folded, pending.presented) = (folded, presented);
            Step::Wait { flight, pending }
        }
    }
}

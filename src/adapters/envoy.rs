//! The proxy-wasm (ABI 0.2.1) adapter for Envoy and Istio.
//!
//! The root context parses the plugin configuration (the policy plus adapter
//! settings), owns the engine and the per-VM state, and runs background work
//! on ticks. Each HTTP context runs the engine on request headers; a
//! `Step::Call` becomes `dispatch_http_call` plus a pause, and the response
//! resumes the engine. Denials become local responses exactly as the core
//! maps them; allows strip incoming identity headers, then set the new ones.
//!
//! Caches: each VM's engine state is backed by Envoy's shared data (a
//! direct-mapped tier written with compare-and-swap), so every worker VM
//! reuses what one verified or introspected. Within a VM, single flight: a
//! stream whose token is already being introspected, or whose issuer's keys
//! are being fetched, parks on that call and is resumed with its outcome
//! (through `proxy_set_effective_context`).
//!
//! Host crypto: when Envoy offers the `verify_signature` foreign function
//! (probed once at configuration, never called through a wrapper that
//! panics), RS256/384/512 signatures are checked by the host; otherwise in
//! wasm. The engine treats both the same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use serde::Deserialize;

use crate::adapters::foreign;
use crate::engine::Job;
use crate::{
    Decision, Engine, Flight, HttpCall, Outcome, Pending, Policy, Request, SharedTier, State, Step,
    Time, VerifyRequest,
};

/// Adapter settings next to the policy in the plugin configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginConfig {
    /// The policy document (see `policies/README.md`).
    policy: serde_json::Value,
    /// Policy upstream name → Envoy cluster name. Unlisted names are used as is.
    #[serde(default)]
    clusters: HashMap<String, String>,
    /// Introspection and revocation-feed client credentials.
    #[serde(default)]
    client_credentials: Option<ClientCredentials>,
    /// Background tick period in milliseconds.
    #[serde(default = "default_tick")]
    tick_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientCredentials {
    client_id: String,
    client_secret: String,
}

fn default_tick() -> u64 {
    250
}

/// A configuration error naming the field.
fn config_error(field: &str, message: &str) -> String {
    format!("erpgate: plugin configuration field `{field}`: {message}")
}

fn parse_config(bytes: &[u8]) -> Result<(Policy, PluginConfig), String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let config: PluginConfig = serde_path_to_error::deserialize(de)
        .map_err(|e| config_error(&e.path().to_string(), &e.inner().to_string()))?;
    if !(10..=60_000).contains(&config.tick_ms) {
        return Err(config_error("tick_ms", "must be between 10 and 60000"));
    }
    let policy = Policy::compile(&config.policy.to_string()).map_err(|e| {
        config_error(
            &format!("policy.{}", e.field),
            &match &e.route {
                Some(route) => format!("(route \"{route}\") {}", e.kind),
                None => e.kind.to_string(),
            },
        )
    })?;
    if let Some(c) = &config.client_credentials
        && (c.client_id.is_empty() || c.client_id.contains(':'))
    {
        return Err(config_error(
            "client_credentials.client_id",
            "must be non-empty without ':'",
        ));
    }
    Ok((policy, config))
}

struct Shared {
    engine: Engine,
    state: RefCell<State>,
    clusters: HashMap<String, String>,
    basic: Option<String>,
    metrics: RefCell<Metrics>,
    /// Streams parked on a call another stream (or a tick) is making.
    parked: RefCell<HashMap<Flight, Vec<(u32, Pending)>>>,
    /// DER forms of RSA keys for `verify_signature`.
    der_keys: RefCell<DerKeys>,
}

/// Hostcalls through the raw ABI where the SDK's wrappers panic on a status
/// they do not expect: metrics, shared data, the effective context and
/// foreign functions are optional or may fail on some hosts, and a filter
/// must never trap over that.
#[allow(unsafe_code, clashing_extern_declarations)]
mod abi {
    /// `Ok` in the ABI's status codes.
    const OK: u32 = 0;
    /// `NotFound`.
    pub const NOT_FOUND: u32 = 1;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_define_metric(kind: u32, name: *const u8, name_len: usize, id: *mut u32) -> u32;
        fn proxy_increment_metric(id: u32, offset: i64) -> u32;
        fn proxy_get_shared_data(
            key: *const u8,
            key_len: usize,
            value: *mut *mut u8,
            value_len: *mut usize,
            cas: *mut u32,
        ) -> u32;
        fn proxy_set_shared_data(
            key: *const u8,
            key_len: usize,
            value: *const u8,
            value_len: usize,
            cas: u32,
        ) -> u32;
        fn proxy_set_effective_context(context_id: u32) -> u32;
        fn proxy_call_foreign_function(
            name: *const u8,
            name_len: usize,
            args: *const u8,
            args_len: usize,
            result: *mut *mut u8,
            result_len: *mut usize,
        ) -> u32;
    }

    /// Takes ownership of a buffer the host allocated through
    /// `proxy_on_memory_allocate` (the SDK's allocator: a `Vec` of exactly
    /// that capacity).
    fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
        if ptr.is_null() || len == 0 {
            return Vec::new();
        }
        // SAFETY: the host filled `len` bytes at `ptr`, which it obtained from
        // the SDK's `proxy_on_memory_allocate(len)`, a leaked `Vec<u8>` with
        // capacity `len`; ownership passes to us exactly once.
        unsafe { Vec::from_raw_parts(ptr, len, len) }
    }

    /// A shared-data value and its CAS version.
    pub fn get_shared(key: &str) -> Option<(Vec<u8>, u32)> {
        let (mut ptr, mut len, mut cas) = (std::ptr::null_mut(), 0usize, 0u32);
        // SAFETY: `key` is valid for its length; the out-pointers are valid
        // and writable for the duration of the call.
        let status =
            unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut len, &mut cas) };
        let value = take(ptr, len);
        (status == OK).then_some((value, cas))
    }

    /// Stores a shared-data value if its version is still `cas` (0: always).
    pub fn set_shared(key: &str, value: &[u8], cas: u32) -> bool {
        // SAFETY: both buffers are valid for their lengths during the call.
        let status = unsafe {
            proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
        };
        status == OK
    }

    /// Makes later hostcalls act on another context (stream).
    pub fn set_effective_context(id: u32) -> bool {
        // SAFETY: plain integer argument.
        unsafe { proxy_set_effective_context(id) == OK }
    }

    /// Calls a host foreign function: `Ok(result)` or the status.
    pub fn call_foreign(name: &str, args: &[u8]) -> Result<Vec<u8>, u32> {
        let (mut ptr, mut len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: name and args are valid for their lengths; the out-pointers
        // are valid and writable during the call.
        let status = unsafe {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                args.as_ptr(),
                args.len(),
                &mut ptr,
                &mut len,
            )
        };
        let result = take(ptr, len);
        if status == OK {
            Ok(result)
        } else {
            Err(status)
        }
    }

    /// Defines a metric (kind 0: counter). `None` when the host refuses.
    pub fn define(kind: u32, name: &str) -> Option<u32> {
        let mut id = 0u32;
        // SAFETY: `name` is valid for `name.len()` bytes during the call, and
        // `id` is a valid, writable u32 the host fills in.
        let status = unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
        (status == 0).then_some(id)
    }

    pub fn increment(id: u32, by: u64) {
        if by == 0 {
            return;
        }
        // SAFETY: plain integer arguments; the status is ignored on purpose.
        let _ = unsafe { proxy_increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX)) };
    }
}

/// Decisions by outcome and reason, and the engine's counters (added on
/// every tick), all as counters.
#[derive(Default)]
struct Metrics {
    ids: HashMap<String, Option<u32>>,
    /// Decision counters by (outcome, reason), so the hot path formats no name.
    decisions: HashMap<(&'static str, &'static str), Option<u32>>,
    /// What this VM has already added to each engine counter: every VM adds
    /// its own increase, so the shared counter is the sum over VMs.
    reported: HashMap<&'static str, u64>,
}

impl Metrics {
    fn id(&mut self, kind: u32, name: &str) -> Option<u32> {
        *self
            .ids
            .entry(name.to_owned())
            .or_insert_with(|| abi::define(kind, name))
    }

    fn decision(&mut self, outcome: &'static str, reason: &'static str) {
        let id = *self
            .decisions
            .entry((outcome, reason))
            .or_insert_with(|| abi::define(0, &format!("erpgate.decisions.{outcome}.{reason}")));
        if let Some(id) = id {
            abi::increment(id, 1);
        }
    }

    fn engine(&mut self, stats: &crate::Stats) {
        for (name, value) in [
            ("erpgate.jwt_cache.hits", stats.jwt_cache_hits),
            ("erpgate.jwt_cache.misses", stats.jwt_cache_misses),
            (
                "erpgate.introspection_cache.hits",
                stats.introspection_cache_hits,
            ),
            (
                "erpgate.introspection_cache.misses",
                stats.introspection_cache_misses,
            ),
            ("erpgate.introspection.calls", stats.introspection_calls),
            (
                "erpgate.introspection.failures",
                stats.introspection_failures,
            ),
            ("erpgate.jwks.fetches", stats.jwks_fetches),
            ("erpgate.jwks.failures", stats.jwks_failures),
            ("erpgate.revocations.applied", stats.revocations_applied),
            ("erpgate.shared_cache.hits", stats.shared_cache_hits),
            ("erpgate.shared_cache.misses", stats.shared_cache_misses),
            ("erpgate.single_flight.joined", stats.flights_joined),
        ] {
            let before = self.reported.insert(name, value).unwrap_or(0);
            if let Some(id) = self.id(0, name) {
                abi::increment(id, value.saturating_sub(before));
            }
        }
    }
}

fn now() -> Time {
    let since = proxy_wasm::hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    Time::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

fn log(level: LogLevel, message: &str) {
    // Logging must never fail a request.
    let _ = proxy_wasm::hostcalls::log(level, message);
}

/// Envoy's shared data as the engine's second cache tier.
struct EnvoyTier;

impl SharedTier for EnvoyTier {
    fn get(&mut self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::get_shared(key).filter(|(value, _)| !value.is_empty())
    }

    fn set(&mut self, key: &str, value: &[u8], version: u32) -> bool {
        abi::set_shared(key, value, version)
    }
}

/// Whether the host answers `verify_signature`. Empty arguments carry no key,
/// which Envoy refuses with `BadArgument`; a host without the function says
/// `NotFound`.
fn probe_host_crypto() -> bool {
    !matches!(
        abi::call_foreign(foreign::VERIFY_SIGNATURE, &[]),
        Err(abi::NOT_FOUND)
    )
}

/// DER keys for `verify_signature`, by modulus: made once per key.
#[derive(Default)]
struct DerKeys(HashMap<String, std::rc::Rc<[u8]>>);

impl DerKeys {
    /// Keys a JWKS holds at once, at most; a rotation clears the rest.
    const MAX: usize = 64;

    fn get(&mut self, jwk: &serde_json::Value) -> Option<std::rc::Rc<[u8]>> {
        let n = jwk.get("n")?.as_str()?;
        if let Some(der) = self.0.get(n) {
            return Some(der.clone());
        }
        let der: std::rc::Rc<[u8]> = foreign::rsa_spki_der(jwk)?.into();
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(n.to_owned(), der.clone());
        Some(der)
    }
}

/// A signature check through Envoy; `Failed` when the host cannot answer.
fn host_verify(keys: &RefCell<DerKeys>, request: &VerifyRequest) -> Outcome {
    let der = keys.borrow_mut().get(&request.jwk);
    let Some(args) = der.and_then(|der| {
        foreign::encode_request(
            request.alg,
            &der,
            &request.signature,
            &request.signing_input,
        )
    }) else {
        return Outcome::Failed;
    };
    match abi::call_foreign(foreign::VERIFY_SIGNATURE, &args)
        .ok()
        .and_then(|bytes| foreign::decode_result(&bytes))
    {
        Some(valid) => Outcome::Verified(valid),
        None => Outcome::Failed,
    }
}

/// Where the engine stopped once signature checks (synchronous here) are done.
enum Settled {
    Decided(Decision),
    Call(HttpCall, Pending),
    Wait(Flight, Pending),
}

impl Shared {
    fn resume(&self, pending: Pending, outcome: Outcome) -> Step {
        self.engine
            .resume(pending, outcome, now(), &mut self.state.borrow_mut())
    }

    /// Runs host signature checks until the engine decides or needs a call.
    fn settle(&self, mut step: Step) -> Settled {
        loop {
            step = match step {
                Step::Decided(decision) => return Settled::Decided(decision),
                Step::Call { call, pending } => return Settled::Call(call, pending),
                Step::Wait { flight, pending } => return Settled::Wait(flight, pending),
                Step::Verify { request, pending } => {
                    self.resume(pending, host_verify(&self.der_keys, &request))
                }
            };
        }
    }

    /// Sends one engine call through Envoy. `Err` when the host refused it
    /// (unknown cluster, bad arguments): the engine then sees a failure.
    fn dispatch(&self, ctx: &dyn Context, call: &HttpCall) -> Result<u32, ()> {
        let cluster = self
            .clusters
            .get(&call.upstream)
            .map_or(call.upstream.as_str(), String::as_str);
        let authority = call.authority.as_deref().unwrap_or(cluster);
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", call.method),
            (":path", &call.path),
            (":authority", authority),
        ];
        headers.extend(call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let auth;
        if call.purpose.needs_client_auth() {
            match &self.basic {
                Some(b) => {
                    auth = b.clone();
                    headers.push(("authorization", &auth));
                }
                None => return Err(()),
            }
        }
        let body = (!call.body.is_empty()).then_some(call.body.as_slice());
        ctx.dispatch_http_call(cluster, headers, body, vec![], call.timeout)
            .map_err(|_| ())
    }

    /// Applies a decision to the effective stream. Returns whether the stream
    /// may continue (an allow) or was answered locally. `present` lists the
    /// stream's header names when known, so only identity headers the client
    /// actually sent cost a hostcall to strip.
    fn apply(&self, decision: Decision, present: Option<&[String]>) -> bool {
        use proxy_wasm::hostcalls;
        use proxy_wasm::types::MapType;
        match decision {
            Decision::Allow(allow) => {
                let source = if allow.from_cache {
                    "cached"
                } else {
                    "verified"
                };
                self.metrics.borrow_mut().decision("allow", source);
                for name in allow.headers.remove.iter() {
                    let sent = present
                        .is_none_or(|names| names.iter().any(|n| n.eq_ignore_ascii_case(name)));
                    if sent {
                        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
                    }
                }
                for (name, value) in &allow.headers.set {
                    let _ =
                        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
                }
                true
            }
            Decision::Deny(denial) => {
                log(
                    LogLevel::Debug,
                    &format!("erpgate: denied ({})", denial.reason.code()),
                );
                self.metrics
                    .borrow_mut()
                    .decision("deny", denial.reason.code());
                let response = denial.response(self.engine.policy());
                let headers: Vec<(&str, &str)> = response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let _ = hostcalls::send_http_response(
                    u32::from(response.status),
                    headers,
                    Some(response.body.as_bytes()),
                );
                false
            }
        }
    }

    /// Resumes every stream parked on `flight` with the outcome its leader
    /// got, then makes `back_to` the effective context again.
    fn wake(&self, flight: Flight, outcome: &Outcome, back_to: u32) {
        let parked = self.parked.borrow_mut().remove(&flight).unwrap_or_default();
        if parked.is_empty() {
            return;
        }
        for (id, pending) in parked {
            // A stream that ended meanwhile is gone; nothing to answer.
            if !abi::set_effective_context(id) {
                continue;
            }
            let step = self.resume(pending, outcome.clone());
            let proceed = match self.settle(step) {
                Settled::Decided(decision) => self.apply(decision, None),
                // A follower's resume never needs another call; should it,
                // the stream fails closed rather than hang.
                Settled::Call(_, pending) | Settled::Wait(_, pending) => {
                    self.engine.abandon(pending, &mut self.state.borrow_mut());
                    fail_closed();
                    false
                }
            };
            if proceed {
                let _ = proxy_wasm::hostcalls::resume_http_request();
            }
        }
        let _ = abi::set_effective_context(back_to);
    }
}

fn call_outcome(ctx: &dyn Context, body_size: usize) -> Outcome {
    let headers = ctx.get_http_call_response_headers();
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok());
    match status {
        Some(status) => Outcome::Response {
            status,
            body: ctx
                .get_http_call_response_body(0, body_size)
                .map(|b| b.to_vec())
                .unwrap_or_default(),
        },
        // Envoy answers a failed or timed-out callout with no `:status`.
        None => Outcome::Failed,
    }
}

/// Answers the effective stream with 503 (nothing allowed).
fn fail_closed() {
    let _ = proxy_wasm::hostcalls::send_http_response(
        503,
        vec![
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        Some(br#"{"error":"temporarily_unavailable"}"#),
    );
}

struct Root {
    id: u32,
    shared: Option<Rc<Shared>>,
    jobs: HashMap<u32, Job>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let (Some(shared), Some(job)) = (self.shared.clone(), self.jobs.remove(&token)) else {
            return;
        };
        let outcome = call_outcome(self, body_size);
        shared
            .engine
            .complete(job, outcome.clone(), now(), &mut shared.state.borrow_mut());
        if let Some(flight) = job.flight() {
            shared.wake(flight, &outcome, self.id);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            log(
                LogLevel::Critical,
                &config_error("(configuration)", "missing"),
            );
            return false;
        };
        match parse_config(&bytes) {
            Ok((policy, config)) => {
                let basic = config.client_credentials.as_ref().map(|c| {
                    use base64::Engine as _;
                    let pair = format!("{}:{}", c.client_id, c.client_secret);
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    )
                });
                let host_crypto = probe_host_crypto();
                let mut engine = Engine::new(policy).with_single_flight();
                if host_crypto {
                    engine = engine.with_host_crypto(&foreign::HOST_ALGORITHMS);
                }
                let mut state = engine.new_state();
                state.attach_shared_tier(Box::new(EnvoyTier));
                log(
                    LogLevel::Info,
                    &format!(
                        "erpgate: configured; RSA signatures verified {}",
                        if host_crypto {
                            "by the host (verify_signature)"
                        } else {
                            "in wasm"
                        }
                    ),
                );
                self.shared = Some(Rc::new(Shared {
                    engine,
                    state: RefCell::new(state),
                    clusters: config.clusters,
                    basic,
                    metrics: RefCell::new(Metrics::default()),
                    parked: RefCell::new(HashMap::new()),
                    der_keys: RefCell::new(DerKeys::default()),
                }));
                // Background work starts with the first tick; a request that
                // needs keys before then fetches them itself.
                self.set_tick_period(Duration::from_millis(config.tick_ms));
                true
            }
            Err(message) => {
                log(LogLevel::Critical, &message);
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        shared
            .metrics
            .borrow_mut()
            .engine(&shared.state.borrow().stats);
        let due = shared
            .engine
            .due_calls(now(), &mut shared.state.borrow_mut());
        for bg in due {
            match shared.dispatch(self, &bg.call) {
                Ok(token) => {
                    self.jobs.insert(token, bg.job);
                }
                Err(()) => {
                    shared.engine.complete(
                        bg.job,
                        Outcome::Failed,
                        now(),
                        &mut shared.state.borrow_mut(),
                    );
                    if let Some(flight) = bg.job.flight() {
                        shared.wake(flight, &Outcome::Failed, self.id);
                    }
                }
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            id: context_id,
            shared: self.shared.clone(),
            pending: None,
            parked_on: None,
            header_names: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    id: u32,
    shared: Option<Rc<Shared>>,
    /// The call this stream made and waits for.
    pending: Option<(u32, Pending)>,
    /// The flight this stream is parked on (its `Pending` is in `Shared`).
    parked_on: Option<Flight>,
    /// The request's header names (lowercase, as Envoy keeps them).
    header_names: Vec<String>,
}

impl Filter {
    /// Drives the engine until it decides, needs a call, or parks; returns
    /// the action.
    fn drive(&mut self, shared: &Rc<Shared>, mut step: Step) -> Action {
        loop {
            step = match shared.settle(step) {
                Settled::Decided(decision) => {
                    return if shared.apply(decision, Some(&self.header_names)) {
                        Action::Continue
                    } else {
                        Action::Pause
                    };
                }
                Settled::Call(call, pending) => match shared.dispatch(self, &call) {
                    Ok(token) => {
                        self.pending = Some((token, pending));
                        return Action::Pause;
                    }
                    Err(()) => {
                        let flight = pending.flight();
                        let step = shared.resume(pending, Outcome::Failed);
                        if let Some(flight) = flight {
                            shared.wake(flight, &Outcome::Failed, self.id);
                        }
                        step
                    }
                },
                Settled::Wait(flight, pending) => {
                    shared
                        .parked
                        .borrow_mut()
                        .entry(flight)
                        .or_default()
                        .push((self.id, pending));
                    self.parked_on = Some(flight);
                    return Action::Pause;
                }
            };
        }
    }
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let Some((expected, pending)) = self.pending.take() else {
            return;
        };
        if expected != token {
            self.pending = Some((expected, pending));
            return;
        }
        let outcome = call_outcome(self, body_size);
        let flight = pending.flight();
        let step = shared.resume(pending, outcome.clone());
        if self.drive(&shared, step) == Action::Continue {
            self.resume_http_request();
        }
        if let Some(flight) = flight {
            shared.wake(flight, &outcome, self.id);
        }
    }

    /// A stream that ends early: a call it led will never report back (Envoy
    /// cancels it), so its followers are answered as if the call failed; a
    /// parked stream leaves its flight.
    fn on_done(&mut self) -> bool {
        let Some(shared) = self.shared.clone() else {
            return true;
        };
        if let Some((_, pending)) = self.pending.take() {
            let flight = pending.flight();
            shared
                .engine
                .abandon(pending, &mut shared.state.borrow_mut());
            if let Some(flight) = flight {
                shared.wake(flight, &Outcome::Failed, self.id);
            }
        }
        if let Some(flight) = self.parked_on.take() {
            let mut parked = shared.parked.borrow_mut();
            if let Some(list) = parked.get_mut(&flight) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    parked.remove(&flight);
                }
            }
        }
        true
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            fail_closed();
            return Action::Pause;
        };
        let headers = self.get_http_request_headers_bytes();
        let method = headers
            .iter()
            .find(|(n, _)| n == ":method")
            .and_then(|(_, v)| std::str::from_utf8(v).ok());
        let path = headers
            .iter()
            .find(|(n, _)| n == ":path")
            .and_then(|(_, v)| std::str::from_utf8(v).ok());
        let (Some(method), Some(path)) = (method, path) else {
            fail_closed();
            return Action::Pause;
        };
        let (method, path) = (method.to_owned(), path.to_owned());
        self.header_names = headers.iter().map(|(n, _)| n.clone()).collect();
        let borrowed: Vec<(&str, &[u8])> = headers
            .iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .map(|(n, v)| (n.as_str(), v.as_ref()))
            .collect();
        let step = shared.engine.start(
            &Request::new(&method, &path, &borrowed),
            now(),
            &mut shared.state.borrow_mut(),
        );
        self.drive(&shared, step)
    }
}

/// Logs a panic at critical level before the VM traps (panic = abort).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        log(LogLevel::Critical, &format!("erpgate panicked: {info}"));
    }));
}

// The SDK's entry point macro defines `_initialize` with `#[no_mangle]`.
#[allow(unsafe_code)]
mod entry {
    proxy_wasm::main! {{
        super::install_panic_hook();
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
        proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(super::Root { id: context_id, shared: None, jobs: std::collections::HashMap::new() })
        });
    }}
}

//! The proxy-wasm (ABI 0.2.1) adapter for Envoy and Istio.
//!
//! The root context parses the plugin configuration (the policy plus adapter
//! settings), owns the engine and the per-VM state, and runs background work
//! on ticks. Each HTTP context runs the engine on request headers; a
//! `Step::Call` becomes `dispatch_http_call` plus a pause, and the response
//! resumes the engine. Denials become local responses exactly as the core
//! maps them; allows strip incoming identity headers, then set the new ones.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use serde::Deserialize;

use crate::engine::Job;
use crate::{Decision, Engine, HttpCall, Outcome, Pending, Policy, Request, State, Step, Time};

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

fn parse_config(bytes: &[u8]) -> Result<(Engine, PluginConfig), String> {
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
    Ok((Engine::new(policy), config))
}

struct Shared {
    engine: Engine,
    state: RefCell<State>,
    clusters: HashMap<String, String>,
    basic: Option<String>,
    metrics: RefCell<Metrics>,
}

/// Metrics through the raw ABI: the SDK's wrappers panic on any status they do
/// not expect, and metrics are optional on some hosts, so a host that refuses
/// them just leaves them undefined.
#[allow(unsafe_code, clashing_extern_declarations)]
mod metric_abi {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_define_metric(kind: u32, name: *const u8, name_len: usize, id: *mut u32) -> u32;
        fn proxy_increment_metric(id: u32, offset: i64) -> u32;
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
    /// What this VM has already added to each engine counter: every VM adds
    /// its own increase, so the shared counter is the sum over VMs.
    reported: HashMap<&'static str, u64>,
}

impl Metrics {
    fn id(&mut self, kind: u32, name: &str) -> Option<u32> {
        *self
            .ids
            .entry(name.to_owned())
            .or_insert_with(|| metric_abi::define(kind, name))
    }

    fn decision(&mut self, outcome: &str, reason: &str) {
        if let Some(id) = self.id(0, &format!("erpgate.decisions.{outcome}.{reason}")) {
            metric_abi::increment(id, 1);
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
        ] {
            let before = self.reported.insert(name, value).unwrap_or(0);
            if let Some(id) = self.id(0, name) {
                metric_abi::increment(id, value.saturating_sub(before));
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

impl Shared {
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

struct Root {
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
            .complete(job, outcome, now(), &mut shared.state.borrow_mut());
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
            Ok((engine, config)) => {
                let basic = config.client_credentials.as_ref().map(|c| {
                    use base64::Engine as _;
                    let pair = format!("{}:{}", c.client_id, c.client_secret);
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    )
                });
                let state = RefCell::new(engine.new_state());
                self.shared = Some(Rc::new(Shared {
                    engine,
                    state,
                    clusters: config.clusters,
                    basic,
                    metrics: RefCell::new(Metrics::default()),
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
                Err(()) => shared.engine.complete(
                    bg.job,
                    Outcome::Failed,
                    now(),
                    &mut shared.state.borrow_mut(),
                ),
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            shared: self.shared.clone(),
            pending: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    shared: Option<Rc<Shared>>,
    pending: Option<(u32, Pending)>,
}

impl Filter {
    /// Drives the engine until it decides or needs a call; returns the action.
    fn drive(&mut self, shared: &Rc<Shared>, mut step: Step) -> Action {
        loop {
            step = match step {
                Step::Decided(decision) => {
                    self.apply(shared, decision);
                    return Action::Continue;
                }
                Step::Call { call, pending } => match shared.dispatch(self, &call) {
                    Ok(token) => {
                        self.pending = Some((token, pending));
                        return Action::Pause;
                    }
                    Err(()) => shared.engine.resume(
                        pending,
                        Outcome::Failed,
                        now(),
                        &mut shared.state.borrow_mut(),
                    ),
                },
                // No host crypto is declared by this adapter yet: the engine
                // never asks, and an answer that is not `Verified` fails closed.
                Step::Verify { pending, .. } => shared.engine.resume(
                    pending,
                    Outcome::Failed,
                    now(),
                    &mut shared.state.borrow_mut(),
                ),
            };
        }
    }

    fn apply(&mut self, shared: &Rc<Shared>, decision: Decision) {
        match decision {
            Decision::Allow(allow) => {
                let source = if allow.from_cache {
                    "cached"
                } else {
                    "verified"
                };
                shared.metrics.borrow_mut().decision("allow", source);
                for name in allow.headers.remove.iter() {
                    self.set_http_request_header(name, None);
                }
                for (name, value) in &allow.headers.set {
                    self.set_http_request_header(name, Some(value));
                }
            }
            Decision::Deny(denial) => {
                log(
                    LogLevel::Debug,
                    &format!("erpgate: denied ({})", denial.reason.code()),
                );
                shared
                    .metrics
                    .borrow_mut()
                    .decision("deny", denial.reason.code());
                let response = denial.response(shared.engine.policy());
                let headers: Vec<(&str, &str)> = response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.send_http_response(
                    u32::from(response.status),
                    headers,
                    Some(response.body.as_bytes()),
                );
            }
        }
    }

    fn fail_closed(&mut self) {
        self.send_http_response(
            503,
            vec![
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
            ],
            Some(br#"{"error":"temporarily_unavailable"}"#),
        );
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
        let step = shared
            .engine
            .resume(pending, outcome, now(), &mut shared.state.borrow_mut());
        if self.drive(&shared, step) == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            self.fail_closed();
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
            self.fail_closed();
            return Action::Pause;
        };
        let (method, path) = (method.to_owned(), path.to_owned());
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
        match self.drive(&shared, step) {
            Action::Continue if self.pending.is_none() => Action::Continue,
            _ => Action::Pause,
        }
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
        proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(super::Root { shared: None, jobs: std::collections::HashMap::new() })
        });
    }}
}

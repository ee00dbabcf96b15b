//! The filter's logic over [`Host`]: one configured plugin per VM drives the
//! engine for each stream (calls, host signature checks, parking on another
//! stream's call), applies decisions, and runs background work on ticks.

use std::cell::RefCell;
use std::collections::HashMap;

use super::config::{Config, DecisionLogConfig};
use super::crypto::{self, DerKeys};
use super::host::{Host, LogLevel};
use super::metrics::Metrics;
use super::parking::ParkingLot;
use crate::adapters::foreign;
use crate::decision::{Decision, METADATA_ANSWER, Response, fail_closed_response};
use crate::decision_log::DecisionLog;
use crate::engine::{BackgroundJob, Engine, Flight, HttpCall, Outcome, State, Step, Suspended};
use crate::request::Request;
use crate::shared_cache::SharedCache;

/// Whether a stream goes on upstream or stays paused (answered locally, or
/// waiting for a call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Forward the request.
    Continue,
    /// Stop the stream here: it was answered locally, or it waits for a call
    /// (its own or another stream's) and is resumed when that completes.
    Pause,
}

/// Where the engine stopped once signature checks (synchronous here) are done.
enum Settled {
    Decided(Decision),
    Call(HttpCall, Suspended),
    Wait(Flight, Suspended),
}

/// Answers the effective stream with the core's fail-closed 503.
pub(super) fn fail_closed(host: &impl Host) {
    respond(host, &fail_closed_response());
}

/// Answers the effective stream locally with `response`.
fn respond(host: &impl Host, response: &Response) {
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    host.send_http_response(response.status, &headers, response.body.as_bytes());
}

/// What besides the policy decides a verdict, as the shared cache's namespace
/// takes it: the clusters the calls go to (sorted) and the introspection
/// client. Two plugins on one VM id share verdicts only when all of it
/// agrees.
fn deployment<'a>(
    clusters: &'a HashMap<String, String>,
    client_id: Option<&'a str>,
) -> Vec<&'a [u8]> {
    let mut clusters: Vec<(&String, &String)> = clusters.iter().collect();
    clusters.sort();
    let mut parts: Vec<&[u8]> = Vec::new();
    for (upstream, cluster) in clusters {
        parts.push(upstream.as_bytes());
        parts.push(cluster.as_bytes());
    }
    parts.push(b"client");
    parts.push(client_id.unwrap_or("").as_bytes());
    parts
}

/// A configured plugin: the engine, its per-VM state, and what the VM's
/// streams share (metrics, parked streams, DER keys).
pub(super) struct Plugin<H: Host> {
    pub(super) host: H,
    engine: Engine,
    state: RefCell<State>,
    clusters: HashMap<String, String>,
    client_authorization: Option<String>,
    metrics: RefCell<Metrics>,
    /// Streams parked on a call another stream (or a tick) is making.
    parked: RefCell<ParkingLot>,
    /// Streams a wake-up let go on upstream: their later body chunks pass.
    released: RefCell<std::collections::HashSet<u32>>,
    der_keys: RefCell<DerKeys>,
    decision_log: DecisionLogConfig,
    /// The clusters and introspection client, as one key: a reload that
    /// changes them keeps no verdict.
    deployment_key: Vec<u8>,
    /// Allows decided so far, for sampling the decision log.
    allows: std::cell::Cell<u64>,
}

impl<H: Host> Plugin<H> {
    /// Builds the plugin from a checked configuration: single flight on,
    /// RSA checks on the host when it offers `verify_signature`, and the
    /// caches backed by `shared` when given.
    pub(super) fn new(host: H, config: Config, shared: Option<Box<dyn SharedCache>>) -> Self {
        Self::build(host, config, shared, None)
    }

    /// A plugin for a new configuration of a running one (Envoy delivers a
    /// changed configuration to the same root context): it keeps the
    /// previous plugin's keys, caches and revocation cursor wherever the
    /// policy parts they depend on, and the clusters and introspection
    /// client, are unchanged, and its metrics carry on. Streams still
    /// waiting on the previous plugin finish there.
    pub(super) fn reconfigured(
        host: H,
        config: Config,
        shared: Option<Box<dyn SharedCache>>,
        previous: &Plugin<H>,
    ) -> Self {
        Self::build(host, config, shared, Some(previous))
    }

    fn build(
        host: H,
        config: Config,
        shared: Option<Box<dyn SharedCache>>,
        previous: Option<&Plugin<H>>,
    ) -> Self {
        let host_crypto = crypto::probe(&host);
        let mut engine = Engine::new(config.policy).with_single_flight();
        if host_crypto {
            engine = engine.with_host_crypto(&foreign::HOST_ALGORITHMS);
        }
        if let Some(key) = config.nonce_key {
            engine = engine.with_dpop_nonce_key(key);
        }
        let deployment = deployment(&config.clusters, config.client_id.as_deref());
        let deployment_key = deployment.concat();
        let secret = host.random_secret().unwrap_or_else(|| {
            // No randomness: the secret is then only as good as the clock.
            // It keys a cache whose entries no one can name without the
            // token itself, so this weakens a second line, not the first.
            host.log(
                LogLevel::Critical,
                "erpgate: the host has no randomness (WASI random_get); the JWT cache key falls back to the clock",
            );
            let digest = crate::cache::TokenHash::of_bytes(&host.now_ns().to_le_bytes()).0;
            let mut secret = [0u8; 16];
            secret.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
            secret
        });
        let mut state = match previous {
            Some(p) if p.deployment_key == deployment_key => {
                let old = p.state.replace(p.engine.new_state(secret));
                engine.adopt(&p.engine, old)
            }
            _ => engine.new_state(secret),
        };
        if let Some(shared) = shared {
            state.attach_shared_cache(engine.policy(), &deployment, shared);
        }
        let metrics = previous.map_or_else(Metrics::default, |p| p.metrics.take());
        host.log(
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
        Self {
            host,
            engine,
            state: RefCell::new(state),
            clusters: config.clusters,
            client_authorization: config.client_authorization,
            metrics: RefCell::new(metrics),
            deployment_key,
            parked: RefCell::new(ParkingLot::default()),
            released: RefCell::default(),
            der_keys: RefCell::new(DerKeys::default()),
            decision_log: config.decision_log,
            allows: std::cell::Cell::new(0),
        }
    }

    /// How many streams are parked, over every flight.
    #[cfg(test)]
    pub(super) fn parked_streams(&self) -> usize {
        self.parked.borrow().len()
    }

    /// The engine's counters.
    #[cfg(test)]
    pub(super) fn stats(&self) -> crate::engine::Stats {
        self.state.borrow().stats.clone()
    }

    fn resume(&self, pending: Suspended, outcome: Outcome) -> Step {
        self.engine.resume(
            pending,
            outcome,
            self.host.now(),
            &mut self.state.borrow_mut(),
        )
    }

    /// Runs host signature checks until the engine decides or needs a call.
    fn settle(&self, mut step: Step) -> Settled {
        loop {
            step = match step {
                Step::Decided(decision) => return Settled::Decided(decision),
                Step::Call { call, pending } => return Settled::Call(call, pending),
                Step::Wait { flight, pending } => return Settled::Wait(flight, pending),
                Step::Verify { request, pending } => {
                    let outcome =
                        crypto::verify(&self.host, &mut self.der_keys.borrow_mut(), &request);
                    self.resume(pending, outcome)
                }
            };
        }
    }

    /// Sends one engine call through the host, with the client credentials
    /// when it needs them. `None` when it cannot go out: the engine then sees
    /// a failure.
    fn dispatch(&self, call: &HttpCall) -> Option<u32> {
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
        if call.purpose.needs_client_auth() {
            headers.push(("authorization", self.client_authorization.as_deref()?));
        }
        let body = (!call.body.is_empty()).then_some(call.body.as_slice());
        self.host
            .dispatch_http_call(cluster, &headers, body, call.timeout)
    }

    /// The host clock in nanoseconds when the decision log is on; 0 (and
    /// no hostcall) otherwise, so an unlogged request pays nothing for it.
    fn clock_ns(&self) -> u64 {
        if self.decision_log.level.is_some() {
            self.host.now_ns()
        } else {
            0
        }
    }

    /// Writes a decision's log line: every denial (shadow ones included),
    /// one allow in `allow_every`. `since_ns` is when the deciding callback's
    /// work began, `before_ns` the stream's earlier work.
    fn log_decision(&self, decision: &Decision, since_ns: u64, before_ns: u64) {
        let Some(level) = self.decision_log.level else {
            return;
        };
        if let Decision::Allow(allow) = decision
            && allow.would_deny.is_none()
        {
            let seen = self.allows.get();
            self.allows.set(seen.wrapping_add(1));
            let every = u64::from(self.decision_log.allow_every);
            if every == 0 || !seen.is_multiple_of(every) {
                return;
            }
        }
        let spent = self.host.now_ns().saturating_sub(since_ns) + before_ns;
        if let Some(record) = DecisionLog::of(decision, self.host.now(), Some(spent / 1_000)) {
            self.host.log(level, &record.line());
        }
    }

    /// Applies a decision to the effective stream. Returns whether the stream
    /// may continue (an allow, or a shadow denial) or was answered locally.
    /// `present` lists the stream's header names when known, so only
    /// identity headers the client actually sent cost a hostcall to strip.
    /// `since_ns` and `before_ns` time the decision for its log line.
    fn apply(
        &self,
        decision: Decision,
        present: Option<&[String]>,
        since_ns: u64,
        before_ns: u64,
    ) -> bool {
        self.log_decision(&decision, since_ns, before_ns);
        match decision {
            Decision::Allow(allow) => {
                let (outcome, source) = match &allow.would_deny {
                    Some(denial) => ("shadow_deny", denial.reason.code()),
                    None if allow.from_cache => ("allow", "cached"),
                    None => ("allow", "verified"),
                };
                self.metrics
                    .borrow_mut()
                    .decision(&self.host, outcome, source);
                for name in allow.headers.remove.iter() {
                    let sent = present
                        .is_none_or(|names| names.iter().any(|n| n.eq_ignore_ascii_case(name)));
                    if sent {
                        self.host.set_request_header(name, None);
                    }
                }
                for (name, value) in allow.headers_to_set() {
                    self.host.set_request_header(name, Some(value));
                }
                true
            }
            Decision::Deny(denial) => {
                let code = denial.reason.code();
                self.host
                    .log(LogLevel::Debug, &format!("erpgate: denied ({code})"));
                self.metrics.borrow_mut().decision(&self.host, "deny", code);
                respond(&self.host, &denial.response(self.engine.policy()));
                false
            }
            Decision::Answer(response) => {
                self.metrics
                    .borrow_mut()
                    .decision(&self.host, "answer", METADATA_ANSWER);
                respond(&self.host, &response);
                false
            }
        }
    }

    /// Resumes every stream parked on `flight` with the outcome its leader
    /// got, then makes `back_to` the effective context again.
    fn wake(&self, flight: Flight, outcome: &Outcome, back_to: u32) {
        let parked = self.parked.borrow_mut().take(flight);
        if parked.is_empty() {
            return;
        }
        for (id, pending) in parked {
            // A stream that ended meanwhile is gone; nothing to answer.
            if !self.host.set_effective_context(id) {
                continue;
            }
            let since = self.clock_ns();
            let step = self.resume(pending, outcome.clone());
            let proceed = match self.settle(step) {
                Settled::Decided(decision) => self.apply(decision, None, since, 0),
                // A follower's resume never needs another call; should it,
                // the stream fails closed rather than hang.
                Settled::Call(_, pending) | Settled::Wait(_, pending) => {
                    self.engine.abandon(pending, &mut self.state.borrow_mut());
                    fail_closed(&self.host);
                    false
                }
            };
            if proceed {
                self.released.borrow_mut().insert(id);
                self.host.resume_http_request();
            }
        }
        let _ = self.host.set_effective_context(back_to);
    }

    /// Applies a background call's outcome and wakes the streams parked on
    /// it (the root context `root_id` is effective again afterwards).
    fn complete(&self, job: BackgroundJob, outcome: Outcome, root_id: u32) {
        self.engine.complete(
            job,
            outcome.clone(),
            self.host.now(),
            &mut self.state.borrow_mut(),
        );
        if let Some(flight) = job.flight() {
            self.wake(flight, &outcome, root_id);
        }
    }
}

/// The root context's part: background calls in flight, by token.
pub(super) struct Background {
    root_id: u32,
    jobs: HashMap<u32, BackgroundJob>,
}

impl Background {
    pub(super) fn new(root_id: u32) -> Self {
        Self {
            root_id,
            jobs: HashMap::new(),
        }
    }

    /// The root context this serves.
    pub(super) fn root_id(&self) -> u32 {
        self.root_id
    }

    /// Reports the engine's counters, then starts the background calls that
    /// are due.
    pub(super) fn on_tick<H: Host>(&mut self, plugin: &Plugin<H>) {
        plugin
            .metrics
            .borrow_mut()
            .engine(&plugin.host, &plugin.state.borrow().stats);
        let staleness = plugin
            .engine
            .staleness(plugin.host.now(), &plugin.state.borrow());
        plugin
            .metrics
            .borrow_mut()
            .staleness(&plugin.host, &staleness);
        let due = plugin
            .engine
            .due_calls(plugin.host.now(), &mut plugin.state.borrow_mut());
        for bg in due {
            match plugin.dispatch(&bg.call) {
                Some(token) => {
                    self.jobs.insert(token, bg.job);
                }
                None => plugin.complete(bg.job, Outcome::Failed, self.root_id),
            }
        }
    }

    /// A background call's response; `read_outcome` reads it from the host
    /// once the token is known to be one of ours.
    pub(super) fn on_call_response<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        token: u32,
        read_outcome: impl FnOnce() -> Outcome,
    ) {
        if let Some(job) = self.jobs.remove(&token) {
            plugin.complete(job, read_outcome(), self.root_id);
        }
    }
}

/// Request headers as the host hands them over, pseudo-headers included.
type HeaderPairs = Vec<(String, Vec<u8>)>;

/// One HTTP stream's part: the call it waits for, or the flight it is
/// parked on.
pub(super) struct Stream {
    id: u32,
    /// The call this stream made and waits for.
    pending: Option<(u32, Suspended)>,
    /// The flight this stream is parked on (its `Suspended` is in the
    /// plugin's parking lot).
    parked_on: Option<Flight>,
    /// The request's header names (lowercase, as Envoy keeps them).
    header_names: Vec<String>,
    /// Allowed and let go on: its body chunks pass. Until then every chunk
    /// is held, since a `Continue` from a body callback would also release
    /// the paused headers, undecided.
    released: bool,
    /// Headers of a request whose body the engine must see first (an OData
    /// `$batch`), with the most it reads.
    awaiting_body: Option<(HeaderPairs, usize)>,
    /// Time spent on this stream's decision in earlier callbacks, ns.
    spent_ns: u64,
}

impl Stream {
    pub(super) fn new(id: u32) -> Self {
        Self {
            id,
            pending: None,
            parked_on: None,
            header_names: Vec::new(),
            released: false,
            awaiting_body: None,
            spent_ns: 0,
        }
    }

    /// Decides a request from its headers (pseudo-headers included), or
    /// waits for its body when the engine must see it and one follows.
    pub(super) fn on_request_headers<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        headers: &[(String, Vec<u8>)],
        end_of_stream: bool,
    ) -> Flow {
        let flow = match self.body_limit(plugin, headers) {
            Some(limit) if !end_of_stream => {
                self.awaiting_body = Some((headers.to_vec(), limit));
                return Flow::Pause;
            }
            Some(_) => self.decide(plugin, headers, Some(&[])),
            None => self.decide(plugin, headers, None),
        };
        self.released = flow == Flow::Continue;
        flow
    }

    fn body_limit<H: Host>(
        &self,
        plugin: &Plugin<H>,
        headers: &[(String, Vec<u8>)],
    ) -> Option<usize> {
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let no_headers: [(&str, &[u8]); 0] = [];
        plugin.engine.body_limit(&Request::new(
            pseudo(":method")?,
            pseudo(":path")?,
            &no_headers,
        ))
    }

    /// A chunk of the request body (`body_size` bytes buffered so far):
    /// passes once the stream is let go; held while it is undecided; for a
    /// request awaiting its body, decided once it is whole or past the
    /// limit, reading at most one byte past it through `read`.
    pub(super) fn on_request_body<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        body_size: usize,
        end_of_stream: bool,
        read: impl FnOnce(usize) -> Vec<u8>,
    ) -> Flow {
        if self.released || plugin.released.borrow_mut().remove(&self.id) {
            self.released = true;
            return Flow::Continue;
        }
        let Some((headers, limit)) = self.awaiting_body.take() else {
            return Flow::Pause;
        };
        if body_size <= limit && !end_of_stream {
            self.awaiting_body = Some((headers, limit));
            return Flow::Pause;
        }
        let body = read(body_size.min(limit.saturating_add(1)));
        let flow = self.decide(plugin, &headers, Some(&body));
        self.released = flow == Flow::Continue;
        flow
    }

    fn decide<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        headers: &[(String, Vec<u8>)],
        body: Option<&[u8]>,
    ) -> Flow {
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let (Some(method), Some(path)) = (pseudo(":method"), pseudo(":path")) else {
            fail_closed(&plugin.host);
            return Flow::Pause;
        };
        self.header_names = headers.iter().map(|(n, _)| n.clone()).collect();
        let borrowed: Vec<(&str, &[u8])> = headers
            .iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let since = plugin.clock_ns();
        let mut request = Request::new(method, path, &borrowed);
        if let (Some(scheme), Some(authority)) = (pseudo(":scheme"), pseudo(":authority")) {
            request = request.with_target(scheme, authority);
        }
        if let Some(body) = body {
            request = request.with_body(body);
        }
        let step = plugin
            .engine
            .start(&request, plugin.host.now(), &mut plugin.state.borrow_mut());
        self.drive(plugin, step, since)
    }

    /// The response to a call this stream made; `read_outcome` reads it from
    /// the host once the token is known to be this stream's.
    pub(super) fn on_call_response<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        token: u32,
        read_outcome: impl FnOnce() -> Outcome,
    ) {
        let Some((expected, pending)) = self.pending.take() else {
            return;
        };
        if expected != token {
            self.pending = Some((expected, pending));
            return;
        }
        let since = plugin.clock_ns();
        let outcome = read_outcome();
        let flight = pending.flight();
        let step = plugin.resume(pending, outcome.clone());
        if self.drive(plugin, step, since) == Flow::Continue {
            self.released = true;
            plugin.host.resume_http_request();
        }
        if let Some(flight) = flight {
            plugin.wake(flight, &outcome, self.id);
        }
    }

    /// A stream that ends early: a call it led will never report back (Envoy
    /// cancels it), so its followers are answered as if the call failed; a
    /// parked stream leaves its flight.
    pub(super) fn on_done<H: Host>(&mut self, plugin: &Plugin<H>) {
        plugin.released.borrow_mut().remove(&self.id);
        if let Some((_, pending)) = self.pending.take() {
            let flight = pending.flight();
            plugin
                .engine
                .abandon(pending, &mut plugin.state.borrow_mut());
            if let Some(flight) = flight {
                plugin.wake(flight, &Outcome::Failed, self.id);
            }
        }
        if let Some(flight) = self.parked_on.take() {
            plugin.parked.borrow_mut().leave(flight, self.id);
        }
    }

    /// Drives the engine until it decides, needs a call, or parks; `since`
    /// is when this callback's work began.
    fn drive<H: Host>(&mut self, plugin: &Plugin<H>, mut step: Step, since: u64) -> Flow {
        loop {
            step = match plugin.settle(step) {
                Settled::Decided(decision) => {
                    let names = Some(self.header_names.as_slice());
                    return if plugin.apply(decision, names, since, self.spent_ns) {
                        Flow::Continue
                    } else {
                        Flow::Pause
                    };
                }
                Settled::Call(call, pending) => match plugin.dispatch(&call) {
                    Some(token) => {
                        self.pending = Some((token, pending));
                        self.spent_ns += plugin.clock_ns().saturating_sub(since);
                        return Flow::Pause;
                    }
                    None => {
                        let flight = pending.flight();
                        let step = plugin.resume(pending, Outcome::Failed);
                        if let Some(flight) = flight {
                            plugin.wake(flight, &Outcome::Failed, self.id);
                        }
                        step
                    }
                },
                Settled::Wait(flight, pending) => {
                    plugin.parked.borrow_mut().park(flight, self.id, pending);
                    self.parked_on = Some(flight);
                    self.spent_ns += plugin.clock_ns().saturating_sub(since);
                    return Flow::Pause;
                }
            };
        }
    }
}

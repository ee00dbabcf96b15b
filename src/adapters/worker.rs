//! The wasm-bindgen adapter for JavaScript edge workers (workerd, Cloudflare).
//!
//! The wasm does no I/O and awaits nothing: `check` returns either a decision
//! or one piece of work for JavaScript (an HTTP call, or a signature check for
//! WebCrypto), and `resume` continues with its outcome.
//!
//! The hot path crosses the boundary as a few plain strings, never JSON: the
//! request's headers go in as one string (name and value on alternate
//! lines), and an allow comes back as one line of flags followed by the
//! identity headers, rendered when the token was first verified. A
//! signature check names its key by fingerprint, so JavaScript imports each
//! key once, and takes its bytes with [`Gate::verify_data`]. JSON is kept for
//! what is rare: denials, HTTP calls, the decision log and the principal
//! (asked for after the decision, [`Gate::last_log`],
//! [`Gate::last_principal`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;

use crate::decision::{METADATA_ANSWER, Response};
use crate::engine::BackgroundJob;
use crate::{
    Algorithm, Decision, Engine, HttpCall, Outcome, Policy, Request, State, Step, Suspended, Time,
    VerifyRequest,
};

/// Most requests a gate keeps suspended; beyond it the oldest is dropped (its
/// `resume` then fails closed).
const MAX_PENDING: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Options {
    /// Algorithms JavaScript verifies with WebCrypto.
    #[serde(default)]
    host_crypto: Vec<String>,
    /// The key DPoP server nonces are minted under (base64url, at least 32
    /// bytes); required when the policy's `dpop.nonces` is on.
    #[serde(default)]
    dpop_nonce_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeJson {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    timeout: bool,
    #[serde(default)]
    failed: bool,
}

impl OutcomeJson {
    fn into_outcome(self) -> Outcome {
        match self {
            OutcomeJson { timeout: true, .. } => Outcome::Timeout,
            OutcomeJson {
                status: Some(status),
                failed: false,
                body,
                ..
            } => Outcome::Response {
                status,
                body: body.unwrap_or_default().into_bytes(),
            },
            _ => Outcome::Failed,
        }
    }
}

fn call_json(call: &HttpCall) -> Value {
    json!({
        "purpose": call.purpose.name(),
        "clientAuth": call.purpose.needs_client_auth(),
        "upstream": call.upstream,
        "method": call.method,
        "path": call.path,
        "authority": call.authority,
        "headers": call.headers,
        "body": String::from_utf8_lossy(&call.body),
        "timeoutMs": u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX),
    })
}

/// A local answer as the `D` step's text: its status, route, reason and
/// the response to send.
fn local_text(response: &Response, route: Option<&str>, reason: &str) -> String {
    let value = json!({
        "status": response.status,
        "route": route,
        "reason": reason,
        "response": { "status": response.status, "headers": response.headers, "body": response.body },
    });
    format!("D{value}")
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn now(now_ms: f64) -> Time {
    // f64 from Date.now(); negative or NaN clamps to the epoch.
    Time::from_millis(if now_ms.is_finite() && now_ms > 0.0 {
        now_ms as u64
    } else {
        0
    })
}

/// One policy with its caches. Keep one per isolate: caches live here.
#[wasm_bindgen]
pub struct Gate {
    engine: Engine,
    state: State,
    pending: BTreeMap<u32, (Suspended, Option<VerifyRequest>)>,
    jobs: BTreeMap<u32, BackgroundJob>,
    next_id: u32,
    /// The last decision and its time, for [`Gate::last_log`] and
    /// [`Gate::last_principal`].
    last: Option<(Decision, Time)>,
}

#[wasm_bindgen]
impl Gate {
    /// Compiles the policy. Throws with the offending field on a bad policy.
    /// `secret` is 16 random bytes (`crypto.getRandomValues`): the JWT
    /// cache is keyed under it.
    #[wasm_bindgen(constructor)]
    pub fn new(policy_json: &str, options_json: &str, secret: &[u8]) -> Result<Gate, JsError> {
        let secret: [u8; 16] = secret
            .try_into()
            .map_err(|_| js_err("secret: 16 random bytes are required"))?;
        let policy = Policy::compile(policy_json).map_err(js_err)?;
        let options: Options = serde_json::from_str(if options_json.is_empty() {
            "{}"
        } else {
            options_json
        })
        .map_err(|e| js_err(format!("options: {e}")))?;
        let mut algorithms = Vec::with_capacity(options.host_crypto.len());
        for name in &options.host_crypto {
            algorithms.push(
                Algorithm::from_name(name).ok_or_else(|| {
                    js_err(format!("options.hostCrypto: unknown algorithm {name}"))
                })?,
            );
        }
        let mut engine = Engine::new(policy).with_host_crypto(&algorithms);
        if let Some(text) = &options.dpop_nonce_key {
            let key = crate::dpop::NonceKey::from_b64url(text).ok_or_else(|| {
                js_err("options.dpopNonceKey: base64url of at least 32 random bytes")
            })?;
            engine = engine.with_dpop_nonce_key(key);
        }
        if engine.lacks_nonce_key() {
            return Err(js_err(
                "options.dpopNonceKey: required, the policy's dpop.nonces is on",
            ));
        }
        let state = engine.new_state(secret);
        Ok(Gate {
            engine,
            state,
            pending: BTreeMap::new(),
            jobs: BTreeMap::new(),
            next_id: 0,
            last: None,
        })
    }

    fn id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// A step as text for JavaScript:
    /// - an allow: `A<from cache 0|1><enforced 0|1> <route index|-> <n>`,
    ///   then `n` header names to remove beyond the policy's list, then the
    ///   identity headers, name and value on alternate lines;
    /// - a shadow denial: `W<route index|-> <status> <reason>`;
    /// - a denial: `D` and JSON;
    /// - an HTTP call: `C` and JSON `{id, call}`;
    /// - a signature check: `V<id> <alg> <key fingerprint> <signing input length>`;
    /// - (from [`Gate::check`] only) the body is needed: `B<limit>`.
    fn step_text(&mut self, step: Step, now: Time) -> String {
        match step {
            Step::Decided(decision) => {
                let text = self.decision_text(&decision);
                self.last = Some((decision, now));
                text
            }
            Step::Call { call, pending } => {
                let id = self.park(pending, None);
                format!("C{}", json!({ "id": id, "call": call_json(&call) }))
            }
            // Single flight is off here (each call already runs to completion
            // in JS); should a wait ever come, it fails closed through the core.
            Step::Wait { pending, .. } => {
                let step = self
                    .engine
                    .resume(pending, Outcome::Failed, now, &mut self.state);
                self.step_text(step, now)
            }
            Step::Verify { request, pending } => {
                let head = (
                    request.alg.name(),
                    request.key.fingerprint.clone(),
                    request.signing_input.len(),
                );
                let id = self.park(pending, Some(request));
                format!("V{id} {} {} {}", head.0, head.1, head.2)
            }
        }
    }

    fn route_index(&self, route: Option<&String>) -> Option<usize> {
        let name = route?;
        self.engine
            .policy()
            .routes
            .iter()
            .position(|r| &r.name == name)
    }

    fn decision_text(&self, decision: &Decision) -> String {
        let route = |r: Option<usize>| r.map_or_else(|| "-".to_owned(), |i| i.to_string());
        match decision {
            Decision::Allow(allow) => {
                let index = route(self.route_index(allow.route.as_ref()));
                if let Some(d) = &allow.would_deny {
                    return format!("W{index} {} {}", d.reason.status(), d.reason.code());
                }
                let strip = self.engine.policy().headers.strip.len();
                let extra = allow.headers.remove.get(strip..).unwrap_or_default();
                let mut out = String::with_capacity(128);
                let _ = write!(
                    out,
                    "A{}{} {index} {}",
                    u8::from(allow.from_cache),
                    u8::from(allow.enforced),
                    extra.len()
                );
                for name in extra {
                    out.push('\n');
                    out.push_str(name);
                }
                for (name, value) in allow.headers_to_set() {
                    out.push('\n');
                    out.push_str(name);
                    out.push('\n');
                    out.push_str(value);
                }
                out
            }
            Decision::Deny(denial) => {
                let response = denial.response(self.engine.policy());
                local_text(&response, denial.route.as_deref(), denial.reason.code())
            }
            // Answered locally like a denial (`allow: false`), with the
            // response to send; the reason says why.
            Decision::Answer(response) => local_text(response, None, METADATA_ANSWER),
        }
    }

    fn park(&mut self, pending: Suspended, verify: Option<VerifyRequest>) -> u32 {
        let id = self.id();
        self.pending.insert(id, (pending, verify));
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_first();
        }
        id
    }

    /// Decides a request. `headers` holds every request header, name and
    /// value on alternate lines (`name\nvalue\nname\nvalue`; Fetch forbids a
    /// newline in either). Without `body`, a request decided on its body
    /// (an OData `$batch`) returns `B<limit>`: call again with at most one
    /// byte more than `limit`. `origin` (`https://host`) is where the
    /// request went, which DPoP proofs name. Returns a step as text (see
    /// the module's documentation).
    pub fn check(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: Option<Vec<u8>>,
        now_ms: f64,
        origin: Option<String>,
    ) -> Result<String, JsError> {
        let mut lines = headers.split('\n');
        let mut borrowed: Vec<(&str, &[u8])> = Vec::with_capacity(8);
        if !headers.is_empty() {
            while let Some(name) = lines.next() {
                let value = lines
                    .next()
                    .ok_or_else(|| js_err("headers: a name without a value"))?;
                borrowed.push((name, value.as_bytes()));
            }
        }
        let mut request = Request::new(method, path, &borrowed);
        if let Some((scheme, authority)) = origin.as_deref().and_then(|o| o.split_once("://")) {
            request = request.with_target(scheme, authority);
        }
        match &body {
            Some(body) => request = request.with_body(body),
            None => {
                if let Some(limit) = self.engine.body_limit(&request) {
                    return Ok(format!("B{limit}"));
                }
            }
        }
        let now = now(now_ms);
        let step = self.engine.start(&request, now, &mut self.state);
        Ok(self.step_text(step, now))
    }

    /// The bytes of a pending signature check: the signing input, then the
    /// signature (its length is given in the `V` step).
    #[wasm_bindgen(js_name = verifyData)]
    pub fn verify_data(&self, id: u32) -> Option<Vec<u8>> {
        let (_, request) = self.pending.get(&id)?;
        let request = request.as_ref()?;
        let mut out = Vec::with_capacity(request.signing_input.len() + request.signature.len());
        out.extend_from_slice(&request.signing_input);
        out.extend_from_slice(&request.signature);
        Some(out)
    }

    /// The public JWK of a pending signature check, as JSON: JavaScript
    /// asks once per key fingerprint.
    #[wasm_bindgen(js_name = verifyKey)]
    pub fn verify_key(&self, id: u32) -> Option<String> {
        let (_, request) = self.pending.get(&id)?;
        Some(request.as_ref()?.key.jwk.to_string())
    }

    /// Continues after a signature check: `Some(valid)`, or `None` when
    /// WebCrypto could not answer (fails closed).
    #[wasm_bindgen(js_name = resumeVerified)]
    pub fn resume_verified(
        &mut self,
        id: u32,
        verified: Option<bool>,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let outcome = verified.map_or(Outcome::Failed, Outcome::Verified);
        self.resume_with(id, outcome, now_ms)
    }

    /// Continues after an HTTP call. `outcome_json` is `{"status","body"}`,
    /// `{"timeout":true}` or `{"failed":true}`.
    pub fn resume(&mut self, id: u32, outcome_json: &str, now_ms: f64) -> Result<String, JsError> {
        let outcome = serde_json::from_str::<OutcomeJson>(outcome_json)
            .map(OutcomeJson::into_outcome)
            .unwrap_or(Outcome::Failed);
        self.resume_with(id, outcome, now_ms)
    }

    fn resume_with(&mut self, id: u32, outcome: Outcome, now_ms: f64) -> Result<String, JsError> {
        let (pending, _) = self
            .pending
            .remove(&id)
            .ok_or_else(|| js_err("unknown or expired pending id"))?;
        let now = now(now_ms);
        let step = self.engine.resume(pending, outcome, now, &mut self.state);
        Ok(self.step_text(step, now))
    }

    /// The decision-log line (`erpgate.decision.v1`) of the last decision,
    /// with the time JavaScript measured.
    #[wasm_bindgen(js_name = lastLog)]
    pub fn last_log(&self, duration_us: Option<u32>) -> Option<String> {
        let (decision, now) = self.last.as_ref()?;
        crate::DecisionLog::of(decision, *now, duration_us.map(u64::from)).map(|r| r.line())
    }

    /// The principal of the last decision, as JSON (`null` without one).
    #[wasm_bindgen(js_name = lastPrincipal)]
    pub fn last_principal(&self) -> String {
        let principal = match self.last.as_ref() {
            Some((Decision::Allow(allow), _)) => allow.principal(),
            _ => None,
        };
        serde_json::to_string(&principal).unwrap_or_else(|_| "null".into())
    }

    /// The policy's route names, as a JSON array: decisions name a route
    /// by its index here.
    pub fn routes(&self) -> String {
        let names: Vec<&str> = self
            .engine
            .policy()
            .routes
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    }

    /// The identity header names every allow removes, as a JSON array.
    pub fn strip(&self) -> String {
        serde_json::to_string(&*self.engine.policy().headers.strip).unwrap_or_else(|_| "[]".into())
    }

    /// Background calls that are due (JWKS refresh, revocation feed), as
    /// `[{"id", "call"}]`.
    pub fn due(&mut self, now_ms: f64) -> String {
        let due = self.engine.due_calls(now(now_ms), &mut self.state);
        let mut out = Vec::with_capacity(due.len());
        for bg in due {
            let id = self.id();
            self.jobs.insert(id, bg.job);
            while self.jobs.len() > MAX_PENDING {
                self.jobs.pop_first();
            }
            out.push(json!({ "id": id, "call": call_json(&bg.call) }));
        }
        Value::Array(out).to_string()
    }

    /// Applies a background call's outcome.
    pub fn complete(&mut self, id: u32, outcome_json: &str, now_ms: f64) -> Result<(), JsError> {
        let job = self
            .jobs
            .remove(&id)
            .ok_or_else(|| js_err("unknown background id"))?;
        let outcome = serde_json::from_str::<OutcomeJson>(outcome_json)
            .map(OutcomeJson::into_outcome)
            .unwrap_or(Outcome::Failed);
        self.engine
            .complete(job, outcome, now(now_ms), &mut self.state);
        Ok(())
    }

    /// Every engine counter, as JSON: the core's metric names in camelCase
    /// without the `erpgate.` prefix (`erpgate.jwt_cache.hits` is
    /// `jwtCacheHits`).
    pub fn stats(&self) -> String {
        let counters = self.state.stats.counters();
        let map: serde_json::Map<String, Value> = counters
            .iter()
            .map(|(name, value)| (camel_case(name), Value::from(*value)))
            .collect();
        Value::Object(map).to_string()
    }

    /// How old the isolate's keys and revocations are, as JSON:
    /// `{"jwksAgeSeconds": {"<issuer index>": s, …}, "revocationFeedAgeSeconds": s | null}`.
    pub fn staleness(&self, now_ms: f64) -> String {
        let s = self.engine.staleness(now(now_ms), &self.state);
        let jwks: serde_json::Map<String, Value> = s
            .jwks_age_s
            .iter()
            .map(|(i, age)| (i.to_string(), Value::from(*age)))
            .collect();
        json!({ "jwksAgeSeconds": jwks, "revocationFeedAgeSeconds": s.feed_age_s }).to_string()
    }
}

/// The `Authorization` value for introspection and the revocation feed (see
/// [`crate::introspection::client_authorization`]); the JS layer sends this
/// rather than encoding credentials itself.
#[wasm_bindgen(js_name = clientAuthorization)]
pub fn client_authorization(client_id: &str, client_secret: &str) -> String {
    crate::introspection::client_authorization(client_id, client_secret)
}

/// `erpgate.jwt_cache.hits` → `jwtCacheHits`.
fn camel_case(metric: &str) -> String {
    let mut out = String::with_capacity(metric.len());
    let mut upper = false;
    for c in metric.strip_prefix("erpgate.").unwrap_or(metric).chars() {
        if c == '_' || c == '.' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

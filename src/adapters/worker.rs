//! The wasm-bindgen adapter for JavaScript edge workers (workerd, Cloudflare).
//!
//! The wasm does no I/O and awaits nothing: `check` returns either a decision
//! or one piece of work for JavaScript (an HTTP call, or a signature check for
//! WebCrypto), and `resume` continues with its outcome. Values cross the
//! boundary as JSON text, which JavaScript parses once per step.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;

use crate::engine::BackgroundJob;
use crate::{
    Algorithm, Decision, Engine, HttpCall, Outcome, Policy, Request, State, Step, Suspended, Time,
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
    #[serde(default)]
    verified: Option<bool>,
}

impl OutcomeJson {
    fn into_outcome(self) -> Outcome {
        match self {
            OutcomeJson {
                verified: Some(v), ..
            } => Outcome::Verified(v),
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
    pending: BTreeMap<u32, Suspended>,
    jobs: BTreeMap<u32, BackgroundJob>,
    next_id: u32,
}

#[wasm_bindgen]
impl Gate {
    /// Compiles the policy. Throws with the offending field on a bad policy.
    #[wasm_bindgen(constructor)]
    pub fn new(policy_json: &str, options_json: &str) -> Result<Gate, JsError> {
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
        let engine = Engine::new(policy).with_host_crypto(&algorithms);
        let state = engine.new_state();
        Ok(Gate {
            engine,
            state,
            pending: BTreeMap::new(),
            jobs: BTreeMap::new(),
            next_id: 0,
        })
    }

    fn id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    fn step_json(&mut self, step: Step, now: Time) -> String {
        match step {
            Step::Decided(decision) => {
                serde_json::to_string(&decision_json(&self.engine, decision, now))
                    .unwrap_or_default()
            }
            Step::Call { call, pending } => {
                let id = self.park(pending);
                json!({ "type": "call", "id": id, "call": call_json(&call) }).to_string()
            }
            // Single flight is off here (each call already runs to completion
            // in JS); should a wait ever come, it fails closed through the core.
            Step::Wait { pending, .. } => {
                let step = self
                    .engine
                    .resume(pending, Outcome::Failed, now, &mut self.state);
                self.step_json(step, now)
            }
            Step::Verify { request, pending } => {
                let id = self.park(pending);
                json!({
                    "type": "verify",
                    "id": id,
                    "verify": {
                        "alg": request.alg.name(),
                        "jwk": request.jwk,
                        "signingInput": crate::encode_b64url(&request.signing_input),
                        "signature": crate::encode_b64url(&request.signature),
                    }
                })
                .to_string()
            }
        }
    }

    fn park(&mut self, pending: Suspended) -> u32 {
        let id = self.id();
        self.pending.insert(id, pending);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_first();
        }
        id
    }

    /// How many body bytes the core must see to decide this request, if
    /// any (an OData `$batch`): read at most one more, and pass them to
    /// `check`.
    #[wasm_bindgen(js_name = bodyLimit)]
    pub fn body_limit(&self, method: &str, path: &str) -> Option<u32> {
        let headers: [(&str, &[u8]); 0] = [];
        self.engine
            .body_limit(&Request::new(method, path, &headers))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Decides a request. `headers_json` is `[[name, value], …]`; `body` is
    /// what `bodyLimit` asked for. Returns a step as JSON:
    /// `{"type":"decision",…}`, `{"type":"call",…}` or `{"type":"verify",…}`.
    pub fn check(
        &mut self,
        method: &str,
        path: &str,
        headers_json: &str,
        body: Option<Vec<u8>>,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let headers: Vec<(String, String)> =
            serde_json::from_str(headers_json).map_err(|e| js_err(format!("headers: {e}")))?;
        let borrowed: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let mut request = Request::new(method, path, &borrowed);
        if let Some(body) = &body {
            request = request.with_body(body);
        }
        let now = now(now_ms);
        let step = self.engine.start(&request, now, &mut self.state);
        Ok(self.step_json(step, now))
    }

    /// Continues after a call or signature check. `outcome_json` is
    /// `{"status","body"}`, `{"timeout":true}`, `{"failed":true}` or `{"verified":bool}`.
    pub fn resume(&mut self, id: u32, outcome_json: &str, now_ms: f64) -> Result<String, JsError> {
        let pending = self
            .pending
            .remove(&id)
            .ok_or_else(|| js_err("unknown or expired pending id"))?;
        let outcome = serde_json::from_str::<OutcomeJson>(outcome_json)
            .map(OutcomeJson::into_outcome)
            .unwrap_or(Outcome::Failed);
        let now = now(now_ms);
        let step = self.engine.resume(pending, outcome, now, &mut self.state);
        Ok(self.step_json(step, now))
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

/// The decision for JavaScript, with its decision-log record (JavaScript
/// fills in `duration_us`, which only it can time). A shadow denial is an
/// allow that carries `wouldDeny` and touches no header.
fn decision_json(engine: &Engine, decision: Decision, now: Time) -> Value {
    let log =
        serde_json::to_value(crate::DecisionLog::of(&decision, now, None)).unwrap_or(Value::Null);
    match decision {
        Decision::Allow(allow) => json!({
            "type": "decision",
            "allow": true,
            "status": 200,
            "route": allow.route,
            "fromCache": allow.from_cache,
            "enforced": allow.enforced,
            "wouldDeny": allow.would_deny.as_ref().map(|d| json!({
                "status": d.reason.status(),
                "reason": d.reason.code(),
            })),
            "principal": allow.principal,
            "headers": { "remove": &*allow.headers.remove, "set": allow.headers.set },
            "log": log,
        }),
        Decision::Deny(denial) => {
            let response = denial.response(engine.policy());
            json!({
                "type": "decision",
                "allow": false,
                "status": response.status,
                "route": denial.route,
                "reason": denial.reason.code(),
                "response": { "status": response.status, "headers": response.headers, "body": response.body },
                "log": log,
            })
        }
    }
}

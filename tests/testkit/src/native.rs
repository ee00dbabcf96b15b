//! The reference harness: the core engine, natively, with calls answered from
//! the vector.

use erpgate::keys::Backend;
use erpgate::{
    Algorithm, Decision, Engine, KeySet, Outcome, Policy, Request, Step, Time, VerifyRequest,
};

use crate::vector::{CallReply, PreparedVector, Reply};
use crate::{Harness, Observed};

/// Runs vectors through [`erpgate::Engine`] in-process.
#[derive(Debug, Default)]
pub struct NativeHarness;

/// The engine outcome for a vector reply.
pub fn outcome(reply: &Reply) -> Outcome {
    match reply {
        Reply::Response { status, body } => Outcome::Response {
            status: *status,
            body: body.clone(),
        },
        Reply::Timeout => Outcome::Timeout,
        Reply::Failed => Outcome::Failed,
    }
}

/// Verifies a host-crypto request the way a host would: from the JWK alone,
/// with the portable backend.
fn host_verify(request: &VerifyRequest) -> Result<bool, String> {
    let jwks = serde_json::json!({ "keys": [request.key.jwk] }).to_string();
    let set = KeySet::from_jwks(jwks.as_bytes(), &[request.alg]).map_err(|e| e.to_string())?;
    let key = set
        .select(None)
        .ok_or("host crypto received an unusable JWK")?;
    Ok(key.verify_with(
        Backend::Portable,
        &request.signing_input,
        &request.signature,
    ))
}

fn take(replies: &mut Vec<CallReply>, purpose: &str) -> Result<CallReply, String> {
    let idx = replies
        .iter()
        .position(|r| r.purpose == purpose)
        .ok_or_else(|| format!("engine asked for an unexpected {purpose} call"))?;
    Ok(replies.remove(idx))
}

/// Applies header edits the way every adapter must: remove in any letter case,
/// then set.
pub fn forwarded_headers(
    request: &[(String, Vec<u8>)],
    remove: &[String],
    set: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = request
        .iter()
        .filter(|(n, _)| !remove.iter().any(|r| r.eq_ignore_ascii_case(n)))
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    out.extend(set.iter().cloned());
    out
}

impl Harness for NativeHarness {
    fn name(&self) -> &str {
        "native"
    }

    fn run(&mut self, vector: &PreparedVector) -> Result<Vec<Observed>, String> {
        let policy = Policy::compile(&vector.policy_json).map_err(|e| e.to_string())?;
        let mut engine = Engine::new(policy);
        if vector.host_crypto {
            engine = engine.with_host_crypto(&Algorithm::ALL);
        }
        if let Some(key) = &vector.dpop_nonce_key {
            let key = erpgate::dpop::NonceKey::from_b64url(key)
                .ok_or("dpop_nonce_key: base64url of at least 32 bytes")?;
            engine = engine.with_dpop_nonce_key(key);
        }
        let mut state = engine.new_state(rand::random());
        let mut out = Vec::with_capacity(vector.steps.len());
        for step in &vector.steps {
            let now = Time::from_millis(step.now_ms);
            if !step.background.is_empty() {
                let mut replies = step.background.clone();
                for bg in engine.due_calls(now, &mut state) {
                    let reply = take(&mut replies, bg.call.purpose.name())?;
                    engine.complete(bg.job, outcome(&reply.reply), now, &mut state);
                }
                if !replies.is_empty() {
                    return Err(format!("{} background replies unused", replies.len()));
                }
            }
            let headers: Vec<(&str, &[u8])> = step
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            let (scheme, authority) = crate::VECTOR_ORIGIN
                .split_once("://")
                .ok_or("VECTOR_ORIGIN is scheme://authority")?;
            let mut request =
                Request::new(&step.method, &step.path, &headers).with_target(scheme, authority);
            // As an adapter does: the body when the engine asks for it, at
            // most one byte past its limit.
            if let Some(limit) = engine.body_limit(&request) {
                let body = step.body.as_deref().unwrap_or("").as_bytes();
                request = request.with_body(body.get(..limit + 1).unwrap_or(body));
            }
            let mut replies = step.calls.clone();
            let mut calls = Vec::new();
            let mut next = engine.start(&request, now, &mut state);
            let decision = loop {
                next = match next {
                    Step::Decided(decision) => break decision,
                    Step::Call { call, pending } => {
                        let purpose = call.purpose.name();
                        calls.push(purpose.to_owned());
                        let reply = take(&mut replies, purpose)?;
                        engine.resume(pending, outcome(&reply.reply), now, &mut state)
                    }
                    Step::Verify { request, pending } => {
                        let ok = host_verify(&request)?;
                        engine.resume(pending, Outcome::Verified(ok), now, &mut state)
                    }
                    Step::Wait { .. } => return Err("single flight is off: no waits".into()),
                };
            };
            let log = erpgate::DecisionLog::of(&decision, now, None)
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| e.to_string())?;
            out.push(match decision {
                Decision::Allow(allow) => Observed {
                    status: 200,
                    forwarded: forwarded_headers(
                        &step.headers,
                        &allow.headers.remove,
                        &allow
                            .headers_to_set()
                            .map(|(n, v)| (n.to_owned(), v.to_owned()))
                            .collect::<Vec<_>>(),
                    ),
                    from_cache: Some(allow.from_cache),
                    calls,
                    would_deny: allow
                        .would_deny
                        .as_ref()
                        .map(|d| d.reason.code().to_owned()),
                    log,
                    ..Observed::default()
                },
                Decision::Answer(response) => Observed {
                    status: response.status,
                    reason: Some(erpgate::decision::METADATA_ANSWER.to_owned()),
                    answer: Some(
                        serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null),
                    ),
                    calls,
                    log,
                    ..Observed::default()
                },
                Decision::Deny(denial) => {
                    let response = denial.response(engine.policy());
                    let body: serde_json::Value =
                        serde_json::from_str(&response.body).map_err(|e| e.to_string())?;
                    Observed {
                        status: response.status,
                        reason: Some(denial.reason.code().to_owned()),
                        error: body
                            .get("error")
                            .and_then(|e| e.as_str())
                            .map(str::to_owned),
                        www_authenticate: response
                            .headers
                            .iter()
                            .find(|(n, _)| n == "www-authenticate")
                            .map(|(_, v)| v.clone()),
                        dpop_nonce: response
                            .headers
                            .iter()
                            .find(|(n, _)| n == "dpop-nonce")
                            .map(|(_, v)| v.clone()),
                        calls,
                        log,
                        ..Observed::default()
                    }
                }
            });
        }
        Ok(out)
    }
}

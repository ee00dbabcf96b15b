//! The shared test-vector corpus. Vectors (`tests/vectors/*.json`) say what must
//! happen; this crate loads them, mints their tokens at run time from the fixture
//! keys, and checks what a [`Harness`] observed. Every erpgate artifact (the
//! native core, the Envoy filter in the gateway runtime, the worker module in
//! workerd) runs the same corpus through its own harness.

// Test support, not shipped: a malformed vector should fail loudly at the line
// that reads it, so slicing and panics are allowed here.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod fixtures;
pub mod js;
mod native;
mod vector;

pub use fixtures::{FixtureKey, Fixtures};
pub use native::{NativeHarness, forwarded_headers, outcome};
pub use vector::{
    CallReply, DEFAULT_NOW, Expect, PreparedStep, PreparedVector, Reply, Vector, dpop_proof,
    merge_patch, preset_claims, test_policy,
};

use std::path::{Path, PathBuf};

/// Where every harness sends the corpus's requests (Envoy's `:scheme` and
/// `:authority`, a worker's URL): what DPoP proofs in vectors name.
pub const VECTOR_ORIGIN: &str = "https://api.demo.my.erp.net";

/// What a harness saw for one step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// HTTP status (200 for an allow).
    pub status: u16,
    /// The engine's reason code, where the harness can see it.
    pub reason: Option<String>,
    /// The `error` member of a denial body.
    pub error: Option<String>,
    /// The `WWW-Authenticate` header of a denial.
    pub www_authenticate: Option<String>,
    /// The `DPoP-Nonce` header of a denial.
    pub dpop_nonce: Option<String>,
    /// Headers the upstream received, lowercase names, for an allow.
    pub forwarded: Vec<(String, String)>,
    /// Whether an allow came from a cache, where the harness can see it.
    pub from_cache: Option<bool>,
    /// Purposes of the calls performed, in order.
    pub calls: Vec<String>,
    /// For an allow in shadow mode: the reason code enforcement would have
    /// denied with.
    pub would_deny: Option<String>,
    /// The decision-log line the artifact wrote for the step, parsed.
    pub log: Option<serde_json::Value>,
    /// The JSON body of a local answer that is not a denial (the
    /// protected-resource metadata); `Null` when it had no body (`HEAD`).
    pub answer: Option<serde_json::Value>,
}

impl Observed {
    /// Whether `self` agrees with a reference observation on every field
    /// `self` could see (a harness that cannot see reason codes or cache hits
    /// leaves them `None`).
    pub fn agrees_with(&self, reference: &Observed) -> bool {
        self.status == reference.status
            && self.error == reference.error
            && self.www_authenticate == reference.www_authenticate
            && self.dpop_nonce == reference.dpop_nonce
            && self.forwarded == reference.forwarded
            && self.calls == reference.calls
            && (self.reason.is_none() || self.reason == reference.reason)
            && (self.from_cache.is_none() || self.from_cache == reference.from_cache)
            && self.would_deny == reference.would_deny
            && self.answer == reference.answer
            && decision_fields(self.log.as_ref()) == decision_fields(reference.log.as_ref())
    }
}

/// A decision-log line without what differs between artifacts by nature:
/// the time, the module's own timing, and whether a call timed out or
/// failed (Envoy reports both alike: a response without `:status`).
fn decision_fields(log: Option<&serde_json::Value>) -> Option<serde_json::Value> {
    let mut log = log?.clone();
    let map = log.as_object_mut()?;
    map.remove("ts_ms");
    map.remove("duration_us");
    if map.get("reason").and_then(|r| r.as_str()) == Some("introspection_timeout") {
        map.insert("reason".into(), "introspection_failed".into());
    }
    Some(log)
}

/// Every member of `erpgate.decision.v1`, with the JSON types it may take.
const DECISION_LOG_MEMBERS: [(&str, &[&str]); 13] = [
    ("schema", &["string"]),
    ("ts_ms", &["number"]),
    ("route", &["string", "null"]),
    ("outcome", &["string"]),
    ("enforced", &["bool"]),
    ("reason", &["string", "null"]),
    ("status", &["number"]),
    ("token_kind", &["string", "null"]),
    ("client_id", &["string", "null"]),
    ("subject", &["string", "null"]),
    ("token_id", &["string", "null"]),
    ("cached", &["bool"]),
    ("duration_us", &["number", "null"]),
];

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The credentials a step sends: every value an authorization, API-key or
/// cookie header carries, and each part of a JWT among them. None of them
/// may ever appear in a log line.
fn credentials(step: &PreparedStep) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in &step.headers {
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "authorization" | "x-api-key" | "cookie") {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        for word in value.split([' ', ';', '=', ',']) {
            if word.len() >= 12 {
                out.push(word.to_owned());
                out.extend(word.split('.').filter(|p| p.len() >= 16).map(str::to_owned));
            }
        }
    }
    out
}

/// Checks a decision-log line against the schema, the observation it
/// belongs to, and the step's credentials.
fn check_log(step: &PreparedStep, seen: &Observed, problems: &mut Vec<String>) {
    // A local answer decides nothing, so it is not logged.
    if step.expect.answer.is_some() {
        if let Some(log) = &seen.log {
            problems.push(format!("a decision-log line for a local answer: {log}"));
        }
        return;
    }
    let Some(log) = &seen.log else {
        problems.push("no decision-log line".into());
        return;
    };
    let Some(map) = log.as_object() else {
        problems.push(format!("decision-log line is not an object: {log}"));
        return;
    };
    for (name, types) in DECISION_LOG_MEMBERS {
        match map.get(name) {
            None => problems.push(format!("decision log lacks `{name}`")),
            Some(v) if !types.contains(&json_type(v)) => {
                problems.push(format!("decision log `{name}` is {v}"));
            }
            Some(_) => {}
        }
    }
    for name in map.keys() {
        if !DECISION_LOG_MEMBERS.iter().any(|(n, _)| n == name) {
            problems.push(format!("decision log has an unknown member `{name}`"));
        }
    }
    if map.get("schema").and_then(|s| s.as_str()) != Some("erpgate.decision.v1") {
        problems.push("decision log schema is not erpgate.decision.v1".into());
    }
    let outcome = if seen.status == 200 && seen.would_deny.is_none() {
        "allow"
    } else {
        "deny"
    };
    if map.get("outcome").and_then(|o| o.as_str()) != Some(outcome) {
        problems.push(format!(
            "decision log outcome {:?} (want {outcome})",
            map.get("outcome")
        ));
    }
    let text = log.to_string();
    for secret in credentials(step) {
        if text.contains(&secret) {
            problems.push("a credential appears in the decision log".into());
        }
    }
    if let Some(want) = &step.expect.log {
        for (name, value) in want {
            if map.get(name) != Some(value) {
                problems.push(format!(
                    "decision log `{name}` = {:?} (want {value})",
                    map.get(name)
                ));
            }
        }
    }
}

/// Runs prepared vectors against one artifact.
pub trait Harness {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// Runs every step of one vector on fresh state.
    fn run(&mut self, vector: &PreparedVector) -> Result<Vec<Observed>, String>;
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loads the fixtures and every vector file.
pub fn load_corpus() -> Result<(Fixtures, Vec<Vector>), String> {
    let root = repo_root();
    let fixtures = Fixtures::load_default()?;
    let vectors = vector::load_dir(&root.join("tests/vectors"))?;
    Ok((fixtures, vectors))
}

/// Prepares every vector (policy, tokens, requests) with the fixtures.
pub fn prepare_corpus() -> Result<Vec<PreparedVector>, String> {
    let (fixtures, vectors) = load_corpus()?;
    vectors.iter().map(|v| v.prepare(&fixtures)).collect()
}

/// Checks one step's observation against its expectation, including that the
/// engine asked for exactly the calls the step answers.
pub fn check(step: &PreparedStep, seen: &Observed) -> Result<(), String> {
    let expect = &step.expect;
    let mut problems = Vec::new();
    if expect.status != seen.status {
        problems.push(format!("status {} (want {})", seen.status, expect.status));
    }
    if let (Some(want), Some(got)) = (&expect.reason, &seen.reason)
        && want != got
    {
        problems.push(format!("reason {got} (want {want})"));
    }
    if let Some(want) = &expect.error
        && seen.error.as_ref() != Some(want)
    {
        problems.push(format!("error {:?} (want {want})", seen.error));
    }
    if let Some(want) = &expect.challenge
        && seen.www_authenticate.as_ref() != Some(want)
    {
        problems.push(format!(
            "www-authenticate {:?} (want {want})",
            seen.www_authenticate
        ));
    }
    if expect.dpop_nonce != seen.dpop_nonce {
        problems.push(format!(
            "dpop-nonce {:?} (want {:?})",
            seen.dpop_nonce, expect.dpop_nonce
        ));
    }
    for (name, value) in &expect.forwarded {
        let got: Vec<&String> = seen
            .forwarded
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        if got != [value] {
            problems.push(format!("forwarded {name} = {got:?} (want [{value:?}])"));
        }
    }
    for name in &expect.not_forwarded {
        if seen
            .forwarded
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            problems.push(format!("header {name} reached the upstream"));
        }
    }
    if let (Some(want), Some(got)) = (expect.from_cache, seen.from_cache)
        && want != got
    {
        problems.push(format!("from_cache {got} (want {want})"));
    }
    if expect.would_deny != seen.would_deny {
        problems.push(format!(
            "would_deny {:?} (want {:?})",
            seen.would_deny, expect.would_deny
        ));
    }
    if let Some(want) = &expect.answer {
        match &seen.answer {
            None => problems.push("no local answer".into()),
            Some(got) => {
                for (name, value) in want {
                    if got.get(name) != Some(value) {
                        problems.push(format!(
                            "answer `{name}` = {:?} (want {value})",
                            got.get(name)
                        ));
                    }
                }
            }
        }
    }
    check_log(step, seen, &mut problems);
    let want_calls: Vec<&str> = step.calls.iter().map(|c| c.purpose.as_str()).collect();
    if want_calls != seen.calls {
        problems.push(format!("calls {:?} (want {want_calls:?})", seen.calls));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Compares another artifact's results with the expectations and with the
/// native core's observations, vector by vector; returns one line per problem.
pub fn check_against_native(
    artifact: &str,
    vectors: &[PreparedVector],
    results: &js::Results,
) -> Vec<String> {
    let mut native = NativeHarness;
    let mut failures = Vec::new();
    for v in vectors {
        let Some(result) = results.get(&v.name) else {
            failures.push(format!("{artifact} {}: not run", v.name));
            continue;
        };
        let seen = match result {
            Ok(seen) => seen,
            Err(e) => {
                failures.push(format!("{artifact} {}: {e}", v.name));
                continue;
            }
        };
        let reference = native.run(v);
        for (i, step) in v.steps.iter().enumerate() {
            let Some(obs) = seen.get(i) else {
                failures.push(format!("{artifact} {} step {i}: missing", v.name));
                continue;
            };
            if let Err(e) = check(step, obs) {
                failures.push(format!("{artifact} {} step {i}: {e}", v.name));
            }
            if let Ok(reference) = &reference
                && !reference.get(i).is_some_and(|r| obs.agrees_with(r))
            {
                failures.push(format!(
                    "{artifact} {} step {i}: differs from native: {obs:?} vs {:?}",
                    v.name,
                    reference.get(i)
                ));
            }
        }
    }
    failures
}

/// Runs the whole corpus through a harness; returns the number of vectors run
/// and the failures, one line each.
pub fn run_corpus(harness: &mut dyn Harness) -> Result<(usize, Vec<String>), String> {
    let vectors = prepare_corpus()?;
    let mut failures = Vec::new();
    for vector in &vectors {
        match harness.run(vector) {
            Err(e) => failures.push(format!("{}: {}", vector.name, e)),
            Ok(seen) => {
                if seen.len() != vector.steps.len() {
                    failures.push(format!(
                        "{}: {} observations for {} steps",
                        vector.name,
                        seen.len(),
                        vector.steps.len()
                    ));
                    continue;
                }
                for (i, (step, obs)) in vector.steps.iter().zip(&seen).enumerate() {
                    if let Err(e) = check(step, obs) {
                        failures.push(format!("{} step {}: {}", vector.name, i, e));
                    }
                }
            }
        }
    }
    Ok((vectors.len(), failures))
}

/// A big-endian integer as exactly `len` bytes: Wycheproof writes EC
/// coordinates with a sign byte, or without their leading zeros; a JWK's
/// `x` and `y` are fixed-width.
pub fn fixed_width(bytes: &[u8], len: usize) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = vec![0u8; len.saturating_sub(trimmed.len())];
    out.extend(trimmed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> PreparedStep {
        PreparedStep {
            now_ms: 0,
            method: "GET".into(),
            path: "/".into(),
            headers: vec![(
                "Authorization".into(),
                b"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXBhcnQtb25l"
                    .to_vec(),
            )],
            body: None,
            calls: Vec::new(),
            background: Vec::new(),
            expect: serde_json::from_str(r#"{"status": 401}"#).unwrap(),
        }
    }

    fn observed(log: serde_json::Value) -> Observed {
        Observed {
            status: 401,
            log: Some(log),
            ..Observed::default()
        }
    }

    fn line(extra: &[(&str, serde_json::Value)]) -> serde_json::Value {
        let mut log = serde_json::json!({
            "schema": "erpgate.decision.v1", "ts_ms": 1, "route": null, "outcome": "deny",
            "enforced": true, "reason": "expired", "status": 401, "token_kind": null,
            "client_id": null, "subject": null, "token_id": null, "cached": false,
            "duration_us": null
        });
        for (k, v) in extra {
            log[*k] = v.clone();
        }
        log
    }

    /// The schema check fails on a renamed or added member, a wrong type,
    /// and any part of the step's token in the line.
    #[test]
    fn the_decision_log_check_catches_schema_drift_and_leaked_tokens() {
        let step = step();
        assert!(check(&step, &observed(line(&[]))).is_ok());
        let leak = line(&[("subject", "c2lnbmF0dXJlLXBhcnQtb25l".into())]);
        assert!(
            check(&step, &observed(leak))
                .unwrap_err()
                .contains("credential")
        );
        let mut renamed = line(&[]);
        renamed.as_object_mut().unwrap().remove("token_id");
        renamed["jti"] = "J".into();
        let problems = check(&step, &observed(renamed)).unwrap_err();
        assert!(problems.contains("lacks `token_id`") && problems.contains("unknown member `jti`"));
        let typed = line(&[("status", "401".into())]);
        assert!(check(&step, &observed(typed)).is_err());
        let missing = Observed {
            status: 401,
            ..Observed::default()
        };
        assert!(
            check(&step, &missing)
                .unwrap_err()
                .contains("no decision-log line")
        );
    }
}

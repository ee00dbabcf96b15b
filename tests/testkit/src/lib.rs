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
pub use native::{NativeHarness, forwarded_headers, outcome, purpose_name};
pub use vector::{
    CallReply, DEFAULT_NOW, Expect, PreparedStep, PreparedVector, Reply, Vector, merge_patch,
    preset_claims, test_policy,
};

use std::path::{Path, PathBuf};

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
    /// Headers the upstream received, lowercase names, for an allow.
    pub forwarded: Vec<(String, String)>,
    /// Whether an allow came from a cache, where the harness can see it.
    pub from_cache: Option<bool>,
    /// Purposes of the calls performed, in order.
    pub calls: Vec<String>,
}

impl Observed {
    /// Whether `self` agrees with a reference observation on every field
    /// `self` could see (a harness that cannot see reason codes or cache hits
    /// leaves them `None`).
    pub fn agrees_with(&self, reference: &Observed) -> bool {
        self.status == reference.status
            && self.error == reference.error
            && self.www_authenticate == reference.www_authenticate
            && self.forwarded == reference.forwarded
            && self.calls == reference.calls
            && (self.reason.is_none() || self.reason == reference.reason)
            && (self.from_cache.is_none() || self.from_cache == reference.from_cache)
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

//! `erpgate explain` tells the truth about the filter and the worker: over
//! the whole vector corpus, it reaches every step's expected outcome and
//! reason; and the command itself, on a refused token, prints the decision
//! with the failing claim marked.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use erpgate::{Policy, Time};
use erpgate_cli::explain::{ExplainRequest, Explainer};
use erpgate_testkit::{Fixtures, outcome, prepare_corpus, preset_claims, test_policy};

#[test]
fn explain_reproduces_the_reason_of_every_vector() {
    let vectors = prepare_corpus().unwrap();
    let mut failures = Vec::new();
    let mut steps = 0;
    for v in &vectors {
        let nonce_key = v
            .dpop_nonce_key
            .as_ref()
            .map(|k| erpgate::dpop::NonceKey::from_b64url(k).unwrap());
        let mut explainer = Explainer::new(Policy::compile(&v.policy_json).unwrap(), nonce_key);
        for (i, step) in v.steps.iter().enumerate() {
            let now = Time::from_millis(step.now_ms);
            if !step.background.is_empty() {
                let mut replies = step.background.clone();
                let due = explainer.engine.due_calls(now, &mut explainer.state);
                for bg in due {
                    let at = replies
                        .iter()
                        .position(|r| r.purpose == bg.call.purpose.name())
                        .unwrap();
                    let reply = replies.remove(at);
                    explainer.engine.complete(
                        bg.job,
                        outcome(&reply.reply),
                        now,
                        &mut explainer.state,
                    );
                }
            }
            let request = ExplainRequest {
                method: step.method.clone(),
                path: step.path.clone(),
                headers: step.headers.clone(),
                body: step.body.clone().map(String::into_bytes),
                origin: Some(erpgate_testkit::VECTOR_ORIGIN.to_owned()),
            };
            let mut replies = step.calls.clone();
            let mut answer = |purpose: erpgate::Purpose| {
                let at = replies
                    .iter()
                    .position(|r| r.purpose == purpose.name())
                    .expect("a call the step answers");
                outcome(&replies.remove(at).reply)
            };
            let explanation = explainer.explain(&request, &mut answer, now);
            steps += 1;
            let expect = &step.expect;
            let verdict = explanation.verdict();
            let want = match (&expect.would_deny, &expect.reason) {
                (Some(shadow), _) => Some(shadow.as_str()),
                (None, Some(reason)) => Some(reason.as_str()),
                (None, None) if expect.status == 200 => Some("allow"),
                (None, None) => None,
            };
            let status = explanation.decision.status();
            if status != expect.status || want.is_some_and(|w| w != verdict) {
                failures.push(format!(
                    "{} step {i}: explain says {status} {verdict}, the vector {} {want:?}",
                    v.name, expect.status
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(steps >= 150, "{steps} steps");
}

#[test]
fn the_command_marks_the_failing_claim() {
    let fixtures = Fixtures::load_default().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, test_policy(&fixtures).unwrap()).unwrap();
    let now = 1_766_505_200;
    let mut claims = preset_claims(&fixtures, "user", now).unwrap();
    claims["exp"] = (now - 120).into();
    let token = fixtures.mint("rsa-a", &claims).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_erpgate"))
            .arg("explain")
            .arg("--policy")
            .arg(&policy)
            .args(["--now", &now.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let curl = format!(
        "curl -s -H 'Authorization: Bearer {token}' https://api.example/api/domain/odata/Crm_Customers?$top=1"
    );
    let report = run(&["--request", &curl]);
    assert!(report.contains("decision: DENY 401 (expired)"), "{report}");
    assert!(report.contains("route api-read: MATCHED"), "{report}");
    assert!(
        report.contains("route identity-server: path does not match"),
        "why an earlier route did not match: {report}"
    );
    let exp_line = report
        .lines()
        .find(|l| l.trim_start().starts_with("exp:"))
        .unwrap();
    assert!(
        exp_line.contains("<-- expired") && exp_line.contains("-120 s"),
        "{exp_line}"
    );
    assert!(
        !report.lines().any(|l| l.contains(&token)),
        "the token is never printed whole"
    );
    let log = report
        .lines()
        .find(|l| l.starts_with("decision log: "))
        .unwrap();
    assert!(log.contains("\"reason\":\"expired\""));

    let report = run(&[
        "--method",
        "POST",
        "--path",
        "/api/domain/odata/Crm_Customers",
    ]);
    assert!(
        report.contains("decision: DENY 401 (missing_credential)"),
        "{report}"
    );
    assert!(
        report.contains("route api-read: method POST is not one of GET, HEAD"),
        "{report}"
    );
}

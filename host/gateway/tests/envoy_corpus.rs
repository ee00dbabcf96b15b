//! The whole vector corpus through the built Envoy filter (`.wasm`) in the
//! gateway's proxy-wasm runtime: every expectation holds and every decision
//! agrees with the native core.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashMap};

use erpgate_gateway::abi::DispatchedCall;
use erpgate_gateway::vm::{CallResult, FilterModule, Verdict};
use erpgate_testkit::{Observed, PreparedVector, Reply, check_against_native, prepare_corpus};
use serde_json::{Value, json};

fn filter_wasm() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/envoy/erpgate_filter.wasm");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build-filter", path.display()))
}

/// Which engine call a dispatched request is, from its `:path`.
fn purpose(policy: &Value, call: &DispatchedCall) -> String {
    let path = call
        .headers
        .iter()
        .find(|(n, _)| n == ":path")
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let base = path.split('?').next().unwrap_or(&path);
    if policy["introspection"]["path"].as_str() == Some(base) {
        return "introspection".into();
    }
    if policy["revocation_feed"]["path"].as_str() == Some(base) {
        return "revocation_feed".into();
    }
    "jwks".into()
}

/// The filter's `erpgate.decisions.shadow_deny.<reason>` counters.
fn shadow_denials(module: &FilterModule) -> HashMap<String, u64> {
    let metrics = module.shared.metrics.lock().unwrap();
    metrics
        .iter()
        .filter_map(|m| {
            let reason = m.name.strip_prefix("erpgate.decisions.shadow_deny.")?;
            Some((reason.to_owned(), m.value))
        })
        .collect()
}

fn result(reply: &Reply) -> CallResult {
    match reply {
        Reply::Response { status, body } => CallResult::Response {
            status: *status,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: body.clone(),
        },
        Reply::Timeout | Reply::Failed => CallResult::Failed,
    }
}

fn run(module: &FilterModule, v: &PreparedVector) -> Result<Vec<Observed>, String> {
    let policy: Value = serde_json::from_str(&v.policy_json).unwrap();
    let mut config = json!({
        "policy": policy,
        "client_credentials": {"client_id": "edge", "client_secret": "secret"},
        "tick_ms": 1000,
        "decision_log": {"level": "info", "allow_every": 1},
    });
    if let Some(key) = &v.dpop_nonce_key {
        config["dpop_nonce_key"] = json!(key);
    }
    let clusters: HashMap<String, String> =
        [("identity".to_owned(), "http://identity.invalid".to_owned())].into();
    let module = module.reconfigure(config.to_string().into_bytes(), clusters);
    let mut vm = module.instantiate().map_err(|e| e.to_string())?;
    let host_checks = || {
        module
            .shared
            .signatures_verified
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let mut out = Vec::new();
    for step in &v.steps {
        vm.set_time_ms(Some(step.now_ms));
        if !step.background.is_empty() {
            let mut replies = step.background.clone();
            for call in vm.tick().map_err(|e| e.to_string())?.root_calls {
                let p = purpose(&policy, &call);
                let i = replies
                    .iter()
                    .position(|r| r.purpose == p)
                    .ok_or(format!("unexpected background {p}"))?;
                let reply = replies.remove(i);
                let progress = vm
                    .call_result(call.token, result(&reply.reply))
                    .map_err(|e| e.to_string())?;
                if !progress.verdicts.is_empty() {
                    return Err("a background call resumed a stream".into());
                }
            }
            if !replies.is_empty() {
                return Err("background replies unused".into());
            }
        }
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), step.method.clone().into_bytes()),
            (":path".into(), step.path.clone().into_bytes()),
            (":authority".into(), b"api.demo.my.erp.net".to_vec()),
            (":scheme".into(), b"https".to_vec()),
        ];
        headers.extend(
            step.headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone())),
        );
        let mut replies = step.calls.clone();
        let mut calls = Vec::new();
        // The body as the step has it: the filter reads it when the
        // engine asks, as Envoy would hand it over.
        let body = step.body.clone().unwrap_or_default().into_bytes();
        let shadow_before = shadow_denials(&module);
        let (id, progress) = vm
            .request(headers, HashMap::new(), body)
            .map_err(|e| e.to_string())?;
        let mut lines = progress.decision_lines.clone();
        let mut verdict = progress.verdict(id).cloned().ok_or("no verdict")?;
        let verdict = loop {
            match verdict {
                Verdict::Wait(dispatched) => {
                    let mut next = None;
                    for call in dispatched {
                        // Client authentication is the filter's job: check it is there.
                        let p = purpose(&policy, &call);
                        if p != "jwks"
                            && !call
                                .headers
                                .iter()
                                .any(|(n, v)| n == "authorization" && v.starts_with(b"Basic "))
                        {
                            return Err(format!("{p} call without client authentication"));
                        }
                        calls.push(p.clone());
                        let i = replies
                            .iter()
                            .position(|r| r.purpose == p)
                            .ok_or(format!("unexpected {p} call"))?;
                        let reply = replies.remove(i);
                        let progress = vm
                            .call_result(call.token, result(&reply.reply))
                            .map_err(|e| e.to_string())?;
                        lines.extend(progress.decision_lines.iter().cloned());
                        next = progress.verdict(id).cloned();
                    }
                    verdict = next.ok_or("no verdict after the calls")?;
                }
                done => break done,
            }
        };
        if !replies.is_empty() {
            return Err("call replies unused".into());
        }
        // A local answer that is not a denial decides nothing: no line.
        let answered = matches!(&verdict, Verdict::Respond(r) if r.status == 200);
        let log: Value = match (lines.as_slice(), answered) {
            ([line], false) => serde_json::from_str(line).map_err(|e| e.to_string())?,
            ([], true) => Value::Null,
            _ => {
                return Err(format!(
                    "{} decision-log lines for one decision",
                    lines.len()
                ));
            }
        };
        if log["enforced"] == false && log["outcome"] == "deny" {
            let reason = log["reason"].as_str().unwrap_or_default();
            let counted = shadow_denials(&module).get(reason).copied().unwrap_or(0);
            if counted != shadow_before.get(reason).copied().unwrap_or(0) + 1 {
                return Err(format!("shadow denial {reason} not counted in the metrics"));
            }
        }
        out.push(match verdict {
            Verdict::Continue(headers) => Observed {
                status: 200,
                forwarded: headers
                    .into_iter()
                    .filter(|(n, _)| !n.starts_with(':'))
                    .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                    .collect(),
                calls,
                // A shadow denial shows only in the filter's own log.
                would_deny: (log["outcome"] == "deny")
                    .then(|| log["reason"].as_str().map(str::to_owned))
                    .flatten(),
                log: Some(log),
                ..Observed::default()
            },
            Verdict::Respond(r) if answered => Observed {
                status: r.status,
                answer: Some(serde_json::from_slice(&r.body).unwrap_or(Value::Null)),
                calls,
                ..Observed::default()
            },
            Verdict::Respond(r) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                Observed {
                    status: r.status,
                    error: body["error"].as_str().map(str::to_owned),
                    www_authenticate: r
                        .headers
                        .iter()
                        .find(|(n, _)| n == "www-authenticate")
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
                    dpop_nonce: r
                        .headers
                        .iter()
                        .find(|(n, _)| n == "dpop-nonce")
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
                    calls,
                    log: Some(log),
                    ..Observed::default()
                }
            }
            Verdict::Wait(_) => unreachable!(),
        });
    }
    HOST_CHECKS.fetch_add(host_checks(), std::sync::atomic::Ordering::Relaxed);
    Ok(out)
}

/// Signatures the host checked, summed over the vectors run.
static HOST_CHECKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn corpus(verify_signature: bool) {
    let vectors = prepare_corpus().unwrap();
    let module = FilterModule::load(&filter_wasm(), Vec::new(), HashMap::new())
        .unwrap()
        .with_verify_signature(verify_signature);
    let results: BTreeMap<String, Result<Vec<Observed>, String>> = vectors
        .iter()
        .map(|v| (v.name.clone(), run(&module, v)))
        .collect();
    let label = if verify_signature {
        "envoy (verify_signature)"
    } else {
        "envoy (wasm crypto)"
    };
    let failures = check_against_native(label, &vectors, &results);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(vectors.len() >= 80);
}

/// One test runs both ways, so the host-check counter is not shared with a
/// concurrently running test.
#[test]
fn envoy_filter_agrees_with_native_on_every_vector_with_and_without_verify_signature() {
    corpus(false);
    assert_eq!(HOST_CHECKS.load(std::sync::atomic::Ordering::Relaxed), 0);
    corpus(true);
    let checked = HOST_CHECKS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(checked >= 20, "the host verified {checked} signatures");
}

#[test]
fn a_bad_configuration_is_refused_naming_the_field() {
    let module = FilterModule::load(&filter_wasm(), Vec::new(), HashMap::new()).unwrap();
    let bad =
        json!({"policy": {"version": 1, "routes": [{"name": "a", "path": {"prefix": "api"}}]}});
    let err = module
        .reconfigure(bad.to_string().into_bytes(), HashMap::new())
        .instantiate()
        .err()
        .unwrap();
    assert!(
        matches!(err, erpgate_gateway::vm::VmError::Configure),
        "{err}"
    );
    let unknown = json!({"policy": {"version": 1, "routes": []}, "clusterz": {}});
    assert!(
        module
            .reconfigure(unknown.to_string().into_bytes(), HashMap::new())
            .instantiate()
            .is_err()
    );
}

#[test]
fn the_deploy_examples_carry_a_configuration_the_filter_accepts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = std::fs::read_to_string(root.join("deploy/envoy/plugin-config.json")).unwrap();
    let value: Value = serde_json::from_str(&config).unwrap();
    let clusters: HashMap<String, String> = [(
        "erp_identity".to_owned(),
        "https://acme.my.erp.net".to_owned(),
    )]
    .into();
    let module = FilterModule::load(&filter_wasm(), Vec::new(), HashMap::new()).unwrap();
    module
        .reconfigure(config.into_bytes(), clusters)
        .instantiate()
        .unwrap();
    let compact = value.to_string();
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    for file in [
        "deploy/envoy/envoy.yaml",
        "deploy/istio/wasmplugin.yaml",
        "deploy/envoy-gateway/extension-policy.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            squash(&text).contains(&squash(&compact)),
            "{file} embeds plugin-config.json verbatim"
        );
    }
}

fn request_headers(credential: (&str, &str)) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api/domain/odata/Crm_Customers".to_vec()),
        (":authority".into(), b"api".to_vec()),
        (credential.0.into(), credential.1.as_bytes().to_vec()),
    ]
}

fn subject(verdict: Option<&Verdict>) -> String {
    match verdict {
        Some(Verdict::Continue(headers)) => headers
            .iter()
            .find(|(n, _)| n == "x-erp-subject")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default(),
        other => panic!("not allowed: {other:?}"),
    }
}

fn calls(verdict: Option<&Verdict>) -> Vec<DispatchedCall> {
    match verdict {
        Some(Verdict::Wait(calls)) => calls.clone(),
        other => panic!("not waiting: {other:?}"),
    }
}

/// Single flight inside one VM, the shared cache across VMs, and a
/// leader that goes away: driven callback by callback, as Envoy would.
#[test]
fn streams_share_one_call_and_vms_share_the_cache() {
    let fixtures = erpgate_testkit::Fixtures::load_default().unwrap();
    let now = erpgate_testkit::DEFAULT_NOW;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let policy: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("policies/erpnet.json")).unwrap())
            .unwrap();
    let config = json!({
        "policy": policy,
        "client_credentials": {"client_id": "edge", "client_secret": "secret"},
        "tick_ms": 60000,
    });
    let clusters: HashMap<String, String> =
        [("identity".to_owned(), "http://identity.invalid".to_owned())].into();
    let module = FilterModule::load(&filter_wasm(), Vec::new(), HashMap::new())
        .unwrap()
        .reconfigure(config.to_string().into_bytes(), clusters);
    let (mut vm1, mut vm2) = (module.instantiate().unwrap(), module.instantiate().unwrap());
    vm1.set_time_ms(Some(now * 1000));
    vm2.set_time_ms(Some(now * 1000));
    let active = |sub: &str| CallResult::Response {
        status: 200,
        headers: vec![],
        body: json!({
            "active": true, "scope": "read", "client_id": "com.example/reports", "sub": sub,
            "exp": now + 3600, "iat": now - 60, "token_type": "reference_token",
            "erp_token_kind": "pat",
        })
        .to_string()
        .into_bytes(),
    };
    let pat = (
        "x-api-key",
        "enrt_1D41D4694B4F02D3D6A31FFA07E20B73F48248B26C75A0CCCB5F9DBEE41F7960",
    );

    // Two streams with one PAT in one VM: one introspection; the second parks.
    let (a, progress) = vm1
        .request(request_headers(pat), HashMap::new(), Vec::new())
        .unwrap();
    let call = calls(progress.verdict(a));
    assert_eq!(call.len(), 1);
    let (b, progress) = vm1
        .request(request_headers(pat), HashMap::new(), Vec::new())
        .unwrap();
    assert!(
        calls(progress.verdict(b)).is_empty(),
        "parked, no second call"
    );
    let progress = vm1.call_result(call[0].token, active("alice")).unwrap();
    assert_eq!(subject(progress.verdict(a)), "alice");
    assert_eq!(
        subject(progress.verdict(b)),
        "alice",
        "resumed with the same outcome"
    );
    vm1.finish(a).unwrap();
    vm1.finish(b).unwrap();

    // Another VM of the same plugin: served from shared data, no call.
    let (c, progress) = vm2
        .request(request_headers(pat), HashMap::new(), Vec::new())
        .unwrap();
    assert_eq!(subject(progress.verdict(c)), "alice");
    vm2.finish(c).unwrap();

    // A leader whose stream ends: its follower fails closed, and the next
    // request makes the call again.
    let other = (
        "x-api-key",
        "enrt_2D41D4694B4F02D3D6A31FFA07E20B73F48248B26C75A0CCCB5F9DBEE41F7960",
    );
    let (d, progress) = vm1
        .request(request_headers(other), HashMap::new(), Vec::new())
        .unwrap();
    assert_eq!(calls(progress.verdict(d)).len(), 1);
    let (e, progress) = vm1
        .request(request_headers(other), HashMap::new(), Vec::new())
        .unwrap();
    assert!(calls(progress.verdict(e)).is_empty());
    let progress = vm1.finish(d).unwrap();
    match progress.verdict(e) {
        Some(Verdict::Respond(r)) => assert_eq!(r.status, 503),
        v => panic!("{v:?}"),
    }
    vm1.finish(e).unwrap();
    let (f, progress) = vm1
        .request(request_headers(other), HashMap::new(), Vec::new())
        .unwrap();
    let call = calls(progress.verdict(f));
    assert_eq!(call.len(), 1, "the flight ended with its leader");
    let progress = vm1.call_result(call[0].token, active("bob")).unwrap();
    assert_eq!(subject(progress.verdict(f)), "bob");
    vm1.finish(f).unwrap();

    // Keys: two JWTs of a not-yet-fetched issuer share one JWKS fetch.
    let mint = |jti: &str| {
        let mut claims = erpgate_testkit::preset_claims(&fixtures, "service", now).unwrap();
        claims["jti"] = json!(jti);
        format!("Bearer {}", fixtures.mint("rsa-a", &claims).unwrap())
    };
    let (t1, t2) = (mint("A1"), mint("A2"));
    let (g, progress) = vm1
        .request(
            request_headers(("authorization", &t1)),
            HashMap::new(),
            Vec::new(),
        )
        .unwrap();
    let call = calls(progress.verdict(g));
    assert_eq!(call.len(), 1);
    let (h, progress) = vm1
        .request(
            request_headers(("authorization", &t2)),
            HashMap::new(),
            Vec::new(),
        )
        .unwrap();
    assert!(
        calls(progress.verdict(h)).is_empty(),
        "waits for the same fetch"
    );
    let jwks = CallResult::Response {
        status: 200,
        headers: vec![],
        body: fixtures.jwks(&["rsa-a"]).unwrap().to_string().into_bytes(),
    };
    let progress = vm1.call_result(call[0].token, jwks).unwrap();
    assert_eq!(subject(progress.verdict(g)), "admin");
    assert_eq!(subject(progress.verdict(h)), "admin");
}

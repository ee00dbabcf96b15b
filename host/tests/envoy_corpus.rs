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

use erpgate_host::gateway::abi::DispatchedCall;
use erpgate_host::gateway::vm::{CallResult, FilterModule, Verdict};
use erpgate_testkit::{Observed, PreparedVector, Reply, check_against_native, prepare_corpus};
use serde_json::{Value, json};

fn filter_wasm() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/envoy/erpgate_filter.wasm");
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
    let config = json!({
        "policy": policy,
        "client_credentials": {"client_id": "edge", "client_secret": "secret"},
        "tick_ms": 1000,
    });
    let clusters: HashMap<String, String> =
        [("identity".to_owned(), "http://identity.invalid".to_owned())].into();
    let module = module.reconfigure(config.to_string().into_bytes(), clusters);
    let mut vm = module.instantiate().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for step in &v.steps {
        vm.set_time_ms(Some(step.now_ms));
        if !step.background.is_empty() {
            let mut replies = step.background.clone();
            for call in vm.tick().map_err(|e| e.to_string())? {
                let p = purpose(&policy, &call);
                let i = replies
                    .iter()
                    .position(|r| r.purpose == p)
                    .ok_or(format!("unexpected background {p}"))?;
                let reply = replies.remove(i);
                vm.call_result(call.token, result(&reply.reply))
                    .map_err(|e| e.to_string())?;
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
        let (_, mut verdict) = vm.request(headers).map_err(|e| e.to_string())?;
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
                        next = vm
                            .call_result(call.token, result(&reply.reply))
                            .map_err(|e| e.to_string())?;
                    }
                    verdict = next.ok_or("no verdict after the calls")?.1;
                }
                done => break done,
            }
        };
        if !replies.is_empty() {
            return Err("call replies unused".into());
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
                    calls,
                    ..Observed::default()
                }
            }
            Verdict::Wait(_) => unreachable!(),
        });
    }
    Ok(out)
}

#[test]
fn envoy_filter_agrees_with_native_on_every_vector() {
    let vectors = prepare_corpus().unwrap();
    let module = FilterModule::load(&filter_wasm(), Vec::new(), HashMap::new()).unwrap();
    let results: BTreeMap<String, Result<Vec<Observed>, String>> = vectors
        .iter()
        .map(|v| (v.name.clone(), run(&module, v)))
        .collect();
    let failures = check_against_native("envoy", &vectors, &results);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(vectors.len() >= 80);
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
        matches!(err, erpgate_host::gateway::vm::VmError::Configure),
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
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
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

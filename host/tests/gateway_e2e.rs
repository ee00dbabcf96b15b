//! End to end through the gateway running the real filter `.wasm`: what
//! `erpgate up` runs, on 127.0.0.1 with free ports.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use erpgate_host::gateway::server::{self, GatewayConfig};
use erpgate_host::stack::{StackOptions, up};
use serde_json::{Value, json};

fn filter_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/envoy/erpgate_filter.wasm")
}

async fn get(url: &str, headers: &[(&str, &[u8])], method: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    for (k, v) in headers {
        req = req.header(*k, reqwest::header::HeaderValue::from_bytes(v).unwrap());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn introspections(state: &erpgate_host::state::AppState) -> u64 {
    state
        .metrics
        .render()
        .lines()
        .filter(|l| {
            l.starts_with("erpgate_requests_total") && l.contains("endpoint=\"introspect\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn pat(identity: &str) -> String {
    let issued: Value = reqwest::Client::new()
        .post(format!("{identity}/admin/reference-tokens"))
        .bearer_auth("admin")
        .json(&json!({"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    issued["token"].as_str().unwrap().to_owned()
}

async fn service_token(identity: &str) -> String {
    let cc: Value = reqwest::Client::new()
        .post(format!("{identity}/id/connect/token"))
        .basic_auth("demo.service", Some("demo-service-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    cc["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let options = StackOptions {
        identity: any,
        gateway: any,
        api: any,
        filter: filter_path(),
        data: dir.path().to_owned(),
        jwks_cooldown_s: 1,
    };
    let stack = up(options, "admin").await.unwrap();
    let identity = stack.host.state.public_url.clone();
    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );

    // A client-credentials JWT: 200, and the upstream sees the identity.
    let jwt = service_token(&identity).await;
    let bearer = format!("Bearer {jwt}");
    let (status, seen) = get(
        &api,
        &[
            ("authorization", bearer.as_bytes()),
            ("X-ERP-Subject", b"root"),
            ("x-Erp-Session-Id", b"spoof"),
        ],
        "GET",
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    let h = &seen["headers"];
    assert_eq!(h["x-erp-subject"], "SYSTEM_APPLICATION_USER");
    assert_eq!(h["x-erp-token-kind"], "service");
    assert_eq!(h["x-erp-client-id"], "demo.service");
    assert!(
        h.get("x-erp-session-id").is_none(),
        "client-sent x-erp-* never reach the upstream: {h}"
    );

    // Missing scope: 403 insufficient_scope.
    let (status, body) = get(&api, &[("authorization", bearer.as_bytes())], "POST").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );

    // A PAT: introspected once, then served from the cache.
    let token = pat(&identity).await;
    let before = introspections(&stack.host.state);
    for _ in 0..3 {
        let (status, seen) = get(&api, &[("x-api-key", token.as_bytes())], "GET").await;
        assert_eq!(
            (status, seen["headers"]["x-erp-subject"].as_str()),
            (200, Some("alice"))
        );
    }
    // Two VMs (worker threads) may each introspect once.
    let calls = introspections(&stack.host.state) - before;
    assert!(
        (1..=2).contains(&calls),
        "introspected {calls} times for 3 requests on 2 VMs"
    );

    // Revoke it: 401 within a second.
    let r = reqwest::Client::new()
        .post(format!("{identity}/id/connect/revocation"))
        .basic_auth("demo.reports", Some("demo-reports-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let revoked = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for _ in 0..2 {
            statuses.push(get(&api, &[("x-api-key", token.as_bytes())], "GET").await.0);
        }
        if statuses.iter().all(|s| *s == 401) {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "still {statuses:?} one second after revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Key rotation: the filter refetches the JWKS on the unknown kid.
    erpgate_host::keys::rotate(
        stack.host.state.store.as_ref(),
        stack.host.state.clock.now(),
        3900,
    )
    .await
    .unwrap();
    stack
        .host
        .state
        .keys
        .reload(
            stack.host.state.store.as_ref(),
            stack.host.state.clock.now(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the 1 s unknown-kid cooldown
    let rotated = service_token(&identity).await;
    assert_ne!(
        rotated.split('.').next(),
        jwt.split('.').next(),
        "signed with the new key"
    );
    for _ in 0..2 {
        let (status, _) = get(
            &api,
            &[("authorization", format!("Bearer {rotated}").as_bytes())],
            "GET",
        )
        .await;
        assert_eq!(status, 200);
    }

    // Hostile input: oversized headers, invalid UTF-8.
    let big = vec![b'a'; 70 * 1024];
    let (status, body) = get(&api, &[("x-padding", &big)], "GET").await;
    assert_eq!(status, 431, "{body}");
    let (status, body) = get(&api, &[("authorization", b"Bearer a\xffb.c.d")], "GET").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Introspection host down: 503, nothing allowed.
    let fresh = pat(&identity).await;
    let gateway = stack.gateway;
    let host = stack.host;
    host.stop().await;
    let (status, body) = get(&api, &[("x-api-key", fresh.as_bytes())], "GET").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    gateway.stop().await;
}

/// A minimal proxy-wasm module whose request callback traps or spins.
fn hostile(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
          (memory (export "memory") 1)
          (func (export "proxy_abi_version_0_2_1"))
          (func (export "_initialize"))
          (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
          (func (export "proxy_on_context_create") (param i32 i32))
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
          (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) {body}))"#
    ))
    .unwrap()
}

async fn hostile_gateway(module: Vec<u8>) {
    let (api, _task) = erpgate_host::stack::placeholder_api("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let gateway = server::start(GatewayConfig {
        filter: module,
        plugin_config: b"{}".to_vec(),
        upstream: format!("http://{api}"),
        clusters: HashMap::new(),
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
    })
    .await
    .unwrap();
    let url = format!("http://{}/api/x", gateway.addr);
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _) = get(&url, &[], "GET").await;
        assert_eq!(status, 503, "fails closed, and the gateway keeps answering");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_filter_fails_closed() {
    hostile_gateway(hostile("unreachable")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_filter_hits_its_deadline_and_fails_closed() {
    hostile_gateway(hostile("(loop (br 0)) i32.const 0")).await;
}

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
use std::time::{Duration, Instant};

use erpgate_gateway::server::{self, GatewayConfig};
use net::{
    introspections, mint_pat as pat_for, revoke_as_reports, send, service_token, up_stack as stack,
};

mod net;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    // An echo upstream, so the test sees exactly what the gateway forwards.
    let (echo, _echo_task) = net::echo_upstream().await;
    let stack = stack(dir.path(), Some(format!("http://{echo}"))).await;
    let identity = stack.host.state.identity.public_url.clone();
    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );

    // A client-credentials JWT: 200, and the upstream sees the identity.
    let jwt = service_token(&identity, "read").await;
    let bearer = format!("Bearer {jwt}");
    let (status, seen) = send(
        &api,
        "GET",
        &[
            ("authorization", bearer.as_bytes()),
            ("X-ERP-Subject", b"root"),
            ("x-Erp-Session-Id", b"spoof"),
        ],
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
    let (status, body) = send(&api, "POST", &[("authorization", bearer.as_bytes())]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );

    // A PAT: introspected once, then served from the cache.
    let token = pat_for(&stack.host.admin_url(), "admin").await;
    let before = introspections(&stack.host.state);
    for _ in 0..3 {
        let (status, seen) = send(&api, "GET", &[("x-api-key", token.as_bytes())]).await;
        assert_eq!(
            (status, seen["headers"]["x-erp-subject"].as_str()),
            (200, Some("alice"))
        );
    }
    // Both VMs (worker threads) share the result through shared data.
    let calls = introspections(&stack.host.state) - before;
    assert_eq!(
        calls, 1,
        "introspected {calls} times for 3 requests on 2 VMs"
    );

    // Many concurrent streams with a fresh PAT: one call per VM at most
    // (single flight), every stream allowed.
    let burst = pat_for(&stack.host.admin_url(), "admin").await;
    let before = introspections(&stack.host.state);
    let requests = (0..16).map(|_| {
        let (api, burst) = (api.clone(), burst.clone());
        tokio::spawn(async move {
            send(&api, "GET", &[("x-api-key", burst.as_bytes())])
                .await
                .0
        })
    });
    for request in requests.collect::<Vec<_>>() {
        assert_eq!(request.await.unwrap(), 200);
    }
    let calls = introspections(&stack.host.state) - before;
    assert!(
        (1..=2).contains(&calls),
        "{calls} introspections for 16 concurrent streams"
    );

    // Revoke it: 401 within a second.
    revoke_as_reports(&identity, &token).await;
    let revoked = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for _ in 0..2 {
            statuses.push(
                send(&api, "GET", &[("x-api-key", token.as_bytes())])
                    .await
                    .0,
            );
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

    // The filter's metrics: decisions by outcome and reason, engine counters.
    tokio::time::sleep(Duration::from_millis(400)).await; // gauges refresh on ticks
    let metrics = stack.gateway.metrics();
    let admin = stack.gateway.admin.expect("the stack serves stats");
    let served = reqwest::get(format!("http://{admin}/stats/prometheus"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        served.contains("erpgate_decisions_allow_verified"),
        "{served}"
    );
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert!(value("erpgate_decisions_allow_verified") >= 1, "{metrics}");
    assert!(value("erpgate_decisions_allow_cached") >= 1, "{metrics}");
    assert!(
        value("erpgate_decisions_deny_insufficient_scope") >= 1,
        "{metrics}"
    );
    assert!(value("erpgate_decisions_deny_inactive") >= 2, "{metrics}");
    assert!(value("erpgate_introspection_calls") >= 1, "{metrics}");
    // Staleness gauges, and every metric the documented alert rules use.
    assert!(
        value("erpgate_revocation_feed_age_seconds") <= 2,
        "{metrics}"
    );
    assert!(
        served.contains("erpgate_jwks_age_seconds_issuer_0"),
        "{served}"
    );
    let rules = include_str!("../../../deploy/prometheus/erpgate-alerts.yaml");
    for expr in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        let name = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("erpgate_"))
            .unwrap();
        assert!(
            served.contains(&format!("{name} ")),
            "alert rule metric {name} is exported"
        );
    }

    // Key rotation: the filter refetches the JWKS on the unknown kid.
    erpgate_identity::keys::rotate(
        stack.host.state.identity.store.as_ref(),
        stack.host.state.identity.clock.now(),
        0,
        3900,
    )
    .await
    .unwrap();
    stack
        .host
        .state
        .identity
        .keys
        .reload(
            stack.host.state.identity.store.as_ref(),
            stack.host.state.identity.clock.now(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the 1 s unknown-kid cooldown
    let rotated = service_token(&identity, "read").await;
    assert_ne!(
        rotated.split('.').next(),
        jwt.split('.').next(),
        "signed with the new key"
    );
    for _ in 0..2 {
        let bearer = format!("Bearer {rotated}");
        let (status, _) = send(&api, "GET", &[("authorization", bearer.as_bytes())]).await;
        assert_eq!(status, 200);
    }

    // Hostile input: oversized headers, invalid UTF-8.
    let big = vec![b'a'; 70 * 1024];
    let (status, body) = send(&api, "GET", &[("x-padding", &big)]).await;
    assert_eq!(status, 431, "{body}");
    let (status, body) = send(&api, "GET", &[("authorization", b"Bearer a\xffb.c.d")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // App changes reach the filter through the feed within a second.
    net::app_changes_reach_the_edge(&api, &stack.host.state, &stack.host.admin_url(), &identity)
        .await;

    // Introspection host down: 503, nothing allowed.
    let fresh = pat_for(&stack.host.admin_url(), "admin").await;
    let gateway = stack.gateway;
    let host = stack.host;
    host.stop().await;
    let (status, body) = send(&api, "GET", &[("x-api-key", fresh.as_bytes())]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    gateway.stop().await;
}

/// `erpgate up` as the README runs it: the gateway in front of the emulated
/// ERP API, which validates the credential again behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_lines_reach_the_emulated_api() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack(dir.path(), None).await;
    let identity = stack.host.state.identity.public_url.clone();
    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );
    let token = service_token(&identity, "read").await;
    let bearer = format!("Bearer {token}");
    let (status, body) = send(&api, "GET", &[("authorization", bearer.as_bytes())]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().map(Vec::len), Some(3));
    let (status, body) = send(&api, "POST", &[("authorization", bearer.as_bytes())]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    // The API opened a session for the call the gateway let through.
    assert_eq!(
        net::sessions_table(&stack.host.admin_url()).await["used"],
        1
    );

    // An OData $batch is decided on its inner requests, at the gateway and
    // again at the API: a read-only token may not read users through it.
    let batch = |base: String, inner: &'static str| {
        let bearer = bearer.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/domain/odata/$batch"))
                .header("authorization", bearer)
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"requests":[{{"id":"1","method":"GET","url":"{inner}"}}]}}"#
                ))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let gateway = format!("http://{}", stack.gateway.addr);
    for base in [gateway.clone(), identity.clone()] {
        let (status, body) = batch(base.clone(), "Systems_Security_Users").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("insufficient_scope")),
            "{base}"
        );
    }
    // Navigation and $expand too, at both.
    for base in [gateway, identity.clone()] {
        for path in [
            "/api/domain/odata/Crm_Customers?$expand=User",
            "/api/domain/odata/General_Contacts_Persons(1)/User",
        ] {
            let (status, _) = send(
                &format!("{base}{path}"),
                "GET",
                &[("authorization", bearer.as_bytes())],
            )
            .await;
            assert_eq!(status, 403, "{base}{path}");
        }
    }
    // What the token may reach is served (or, not emulated, answered 501).
    let (status, _) = batch(identity.clone(), "Crm_Customers").await;
    assert_eq!(status, 501);
    stack.stop().await;
}

/// A request body reaching the filter while its decision waited on
/// introspection was let go by the SDK's default `Continue`, which in
/// Envoy also releases the paused headers: a POST with a revoked PAT
/// reached the upstream. The gateway now hands the filter the body as Envoy
/// does, and the filter holds it until the stream is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_never_carries_an_undecided_request_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, _echo_task) = net::echo_upstream().await;
    let stack = stack(dir.path(), Some(format!("http://{echo}"))).await;
    let identity = stack.host.state.identity.public_url.clone();
    let pat = pat_for(&stack.host.admin_url(), "admin").await;
    revoke_as_reports(&identity, &pat).await;
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/api/domain/odata/Crm_Customers",
            stack.gateway.addr
        ))
        .header("x-api-key", &pat)
        .body("{\"Name\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "{:?}", r.text().await);
    stack.stop().await;
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

/// A one-worker gateway running `module` in front of `upstream`.
async fn gateway_with(module: Vec<u8>, upstream: std::net::SocketAddr) -> server::Gateway {
    server::start(GatewayConfig {
        filter: module,
        plugin_config: b"{}".to_vec(),
        upstream: format!("http://{upstream}"),
        clusters: HashMap::new(),
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        admin: None,
        verify_signature: true,
    })
    .await
    .unwrap()
}

async fn hostile_gateway(module: Vec<u8>) {
    let (api, _task) = net::echo_upstream().await;
    let gateway = gateway_with(module, api).await;
    let url = format!("http://{}/api/x", gateway.addr);
    // The gateway's own 503 is the core's fail-closed response, as the
    // filter's is: one denial mapping for every door.
    let expected: serde_json::Value =
        serde_json::from_str(&erpgate::fail_closed_response().body).unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = send(&url, "GET", &[]).await;
        assert_eq!(status, 503, "fails closed, and the gateway keeps answering");
        assert_eq!(body, expected);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    gateway.stop().await;
}

/// RFC 9110 7.6.1: what the client's `Connection` nominates is hop-by-hop
/// and never reaches the upstream (it did, through a filter that continues).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_the_connection_header_nominates_never_reach_the_upstream() {
    let (api, _task) = net::echo_upstream().await;
    let gateway = gateway_with(hostile("i32.const 0"), api).await;
    let url = format!("http://{}/api/x", gateway.addr);
    let (status, seen) = send(
        &url,
        "GET",
        &[
            ("connection", b"keep-alive, X-Hop"),
            ("x-hop", b"for the next hop only"),
            ("x-kept", b"end to end"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    let h = &seen["headers"];
    assert!(h.get("x-hop").is_none(), "{h}");
    assert_eq!(h["x-kept"], "end to end");
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

/// `erpgate gateway` follows its plugin-configuration file: an edit that
/// adds a route is live within two seconds while requests keep flowing,
/// none fails, and the filter keeps its verdict cache across the reload; a
/// configuration the filter refuses leaves the running one in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_edit_is_live_within_two_seconds_and_keeps_the_caches() {
    use erpgate_testkit::{Fixtures, preset_claims, test_policy};
    let fixtures = Fixtures::load_default().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = fixtures
        .mint("rsa-a", &preset_claims(&fixtures, "user", now).unwrap())
        .unwrap();
    let mut policy: serde_json::Value =
        serde_json::from_str(&test_policy(&fixtures).unwrap()).unwrap();
    let config = |policy: &serde_json::Value| {
        serde_json::json!({"policy": policy, "decision_log": {"level": "off"}})
            .to_string()
            .into_bytes()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin-config.json");
    std::fs::write(&file, config(&policy)).unwrap();
    let (echo, _echo_task) = net::echo_upstream().await;
    let gateway = server::start(GatewayConfig {
        filter: std::fs::read(net::filter_path()).unwrap(),
        plugin_config: config(&policy),
        upstream: format!("http://{echo}"),
        clusters: HashMap::new(),
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        admin: None,
        verify_signature: true,
    })
    .await
    .unwrap();
    let api = format!("http://{}/api/domain/odata/Crm_Customers", gateway.addr);
    let added = format!("http://{}/added-by-reload", gateway.addr);
    let counter = |g: &server::Gateway, name: &str| -> u64 {
        g.metrics()
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let cache = |g: &server::Gateway| {
        (
            counter(g, "erpgate_jwt_cache_hits"),
            counter(g, "erpgate_jwt_cache_misses"),
        )
    };

    // Load: four clients with the same token until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (api, stop, bearer) = (api.clone(), stop.clone(), format!("Bearer {token}"));
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, 0u32);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match send(&api, "GET", &[("authorization", bearer.as_bytes())])
                        .await
                        .0
                    {
                        200 => ok += 1,
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();

    let test = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(send(&added, "GET", &[]).await.0, 403, "no such route yet");
        let before = cache(&gateway);
        policy["routes"]
            .as_array_mut()
            .unwrap()
            .insert(0, serde_json::json!({"name": "added", "path": {"exact": "/added-by-reload"}, "public": true}));
        std::fs::write(&file, config(&policy)).unwrap();
        let edited = Instant::now();
        while send(&added, "GET", &[]).await.0 != 200 {
            assert!(
                edited.elapsed() < Duration::from_secs(2),
                "not live 2 s after the edit"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let live_after = edited.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = cache(&gateway);
        // A refused configuration: the running one stays.
        std::fs::write(&file, br#"{"policy": {"version": 1, "routes": []}}"#).unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            send(&added, "GET", &[]).await.0,
            200,
            "the running policy stays"
        );
        (before, after, live_after)
    };
    let (before, after, live_after) = tokio::select! {
        outcome = test => outcome,
        followed = gateway.follow_config(&file) => panic!("stopped following: {followed:?}"),
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for task in load {
        let (o, f) = task.await.unwrap();
        ok += o;
        failed += f;
    }
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed across the reload",
        ok + failed
    );
    assert!(
        after.0 > before.0,
        "the JWT cache kept serving: {before:?} then {after:?}"
    );
    assert_eq!(
        after.1, before.1,
        "no verdict was lost: the token was never verified again"
    );
    assert!(live_after < Duration::from_secs(2));
    gateway.stop().await;
}

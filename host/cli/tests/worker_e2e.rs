//! End to end: the Cloudflare deploy entry (`deploy/cloudflare/worker.js`)
//! in real workerd, in front of an echo origin, with tokens from the real host.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::HeaderMap;
use net::{introspections, mint_pat, revoke_as_reports, send, service_token};
use serde_json::{Value, json};

mod net;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// An origin that answers with the headers it received.
async fn echo_origin() -> String {
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let map: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
            .collect();
        Json(Value::Object(map))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// `to` relative to the directory `from` (capnp `embed` takes relative paths only).
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out: Vec<String> = std::iter::repeat_n("..".to_owned(), from.len() - common).collect();
    out.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    out.join("/")
}

fn workerd_config(dir: &Path, origin: &str, identity: &str, policy: &str) -> std::path::PathBuf {
    let r = root();
    let dir = dir.canonicalize().unwrap();
    let p = |rel: &str| relative(&dir, &r.join(rel));
    let text = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "edge", worker = .edge),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "edge")],
);
const edge :Workerd.Worker = (
  modules = [
    (name = "deploy/cloudflare/worker.js", esModule = embed "{worker}"),
    (name = "src/adapters/js/index.js", esModule = embed "{index}"),
    (name = "src/adapters/js/pkg/erpgate.js", esModule = embed "{bindings}"),
    (name = "src/adapters/js/pkg/erpgate_bg.wasm", wasm = embed "{wasm}"),
    (name = "policies/erpnet.json", json = embed "{policy_file}"),
  ],
  bindings = [
    (name = "ORIGIN", text = "{origin}"),
    (name = "IDENTITY_URL", text = "{identity}"),
    (name = "INTROSPECTION_CLIENT_ID", text = "erpgate.edge"),
    (name = "INTROSPECTION_CLIENT_SECRET", text = "demo-edge-secret"),
    (name = "POLICY", text = {policy}),
    (name = "DPOP_NONCE_KEY", text = "{nonce_key}"),
  ],
  globalOutbound = "loopback",
  compatibilityDate = "2025-06-01",
);
"#,
        worker = p("deploy/cloudflare/worker.js"),
        index = p("src/adapters/js/index.js"),
        bindings = p("src/adapters/js/pkg/erpgate.js"),
        wasm = p("src/adapters/js/pkg/erpgate_bg.wasm"),
        policy_file = p("policies/erpnet.json"),
        policy = serde_json::to_string(policy).unwrap(),
        nonce_key = erpgate::encode_b64url(&rand::random::<[u8; 32]>()),
    );
    let path = dir.join("edge.capnp");
    std::fs::write(&path, text).unwrap();
    path
}

/// A request through the worker to the API.
async fn call(edge: &str, method: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    send(
        &format!("http://{edge}/api/domain/odata/Crm_Customers"),
        method,
        &headers,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_in_workerd_in_front_of_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let identity = format!("http://{}", host.addr);
    let origin = echo_origin().await;

    let mut policy: Value =
        serde_json::from_str(include_str!("../../../policies/erpnet.json")).unwrap();
    policy["issuers"][0]["issuer"] = json!(format!("{identity}/id"));
    // DPoP proofs at this edge must carry its server nonce.
    policy["dpop"] = json!({ "nonces": true });
    let cfg = workerd_config(dir.path(), &origin, &identity, &policy.to_string());
    let workerd = erpgate_testkit::js::start_workerd(cfg.to_str().unwrap()).unwrap();
    let addr = workerd.addr.clone();

    // Client credentials → 200, identity forwarded, spoofed headers gone.
    let bearer = format!("Bearer {}", service_token(&identity, "read").await);
    let (status, echoed) = call(
        &addr,
        "GET",
        &[("authorization", &bearer), ("X-Erp-Db", "other")],
    )
    .await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(echoed["x-erp-subject"], "SYSTEM_APPLICATION_USER");
    assert_eq!(echoed["x-erp-token-kind"], "service");
    assert_eq!(echoed["x-erp-db"], "demo", "the client's copy was replaced");

    // A missing scope → 403 insufficient_scope.
    let (status, body) = call(&addr, "POST", &[("authorization", &bearer)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );

    // npm openid-client with DPoP: bound tokens by authorization code +
    // PKCE and by client credentials, used through the worker with its
    // own proofs (after the edge handed it a server nonce); the bound token
    // as a bearer token gets the challenge.
    let api = format!("http://{addr}/api/domain/odata/Crm_Customers");
    let seen = net::node(vec![
        "openid-client.mjs".into(),
        format!("{identity}/id"),
        api,
    ])
    .await;
    net::assert_openid_client_dpop(&seen, true);

    // A PAT: introspected once, then served from the isolate's cache.
    let pat = mint_pat(&host.admin_url(), "admin").await;
    let before = introspections(&host.state);
    let (status, echoed) = call(&addr, "GET", &[("x-api-key", &pat)]).await;
    assert_eq!(
        (status, echoed["x-erp-subject"].as_str()),
        (200, Some("alice"))
    );
    let (status, _) = call(&addr, "GET", &[("x-api-key", &pat)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        introspections(&host.state) - before,
        1,
        "introspected once, then cached"
    );

    // Revoke it: the feed turns it into a 401 within a second.
    revoke_as_reports(&identity, &pat).await;
    let revoked_at = Instant::now();
    loop {
        let (status, _) = call(&addr, "GET", &[("x-api-key", &pat)]).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still allowed 1 s after revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(1));

    // App changes reach the isolate through the feed within a second.
    let api = format!("http://{addr}/api/domain/odata/Crm_Customers");
    net::app_changes_reach_the_edge(&api, &host.state, &host.admin_url(), &identity).await;

    // Identity host down: a token that needs introspection gets 503, never an allow.
    let fresh = mint_pat(&host.admin_url(), "admin").await;
    host.stop().await;
    let (status, body) = call(&addr, "GET", &[("x-api-key", &fresh)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
}

//! Helpers for tests that talk to a running host over real HTTP.
#![allow(
    missing_docs,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use erpgate_host::config::Config;
use erpgate_host::state::SystemClock;
use erpgate_host::store::SqliteStore;
use serde_json::{Value, json};

pub const EDGE: (&str, &str) = ("erpgate.edge", "demo-edge-secret");

/// Sends a request; returns the status and the body as JSON (or as a string).
pub async fn send(url: &str, method: &str, headers: &[(&str, &[u8])]) -> (u16, Value) {
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

/// A client-credentials token for the demo service app.
pub async fn service_token(identity: &str, scope: &str) -> String {
    let cc: Value = reqwest::Client::new()
        .post(format!("{identity}/id/connect/token"))
        .basic_auth("demo.service", Some("demo-service-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    cc["access_token"].as_str().unwrap().to_owned()
}

/// A PAT for alice on demo.reports, through the admin API.
pub async fn mint_pat(identity: &str, admin: &str) -> String {
    let issued: Value = reqwest::Client::new()
        .post(format!("{identity}/admin/reference-tokens"))
        .bearer_auth(admin)
        .json(&json!({"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    issued["token"].as_str().unwrap().to_owned()
}

/// Introspects as the edge.
pub async fn introspect(identity: &str, token: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{identity}/id/connect/introspect"))
        .basic_auth(EDGE.0, Some(EDGE.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Revokes a token as its own client (demo.reports).
pub async fn revoke_as_reports(identity: &str, token: &str) {
    let r = reqwest::Client::new()
        .post(format!("{identity}/id/connect/revocation"))
        .basic_auth("demo.reports", Some("demo-reports-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Introspection requests the host has answered so far.
pub fn introspections(state: &erpgate_host::state::AppState) -> u64 {
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

/// The demo host on a free loopback port, storing in `dir`; admin credential `admin`.
pub async fn start_demo_host(dir: &std::path::Path) -> erpgate_host::Running {
    let mut config = Config::demo();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    let store = Arc::new(SqliteStore::open(dir).unwrap());
    erpgate_host::start(config, store, Arc::new(SystemClock), "admin", false)
        .await
        .unwrap()
}

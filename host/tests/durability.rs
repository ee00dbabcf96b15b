//! A write the host reports as done survives `kill -9`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const ADMIN: &str = "durability-admin";

fn start(data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_erpgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "https://durability.test",
            "--data",
        ])
        .arg(data)
        .env("ERPGATE_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    // "erpgate identity host on https://durability.test (listening on 127.0.0.1:PORT)"
    let addr = first
        .trim()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "banner: {first}");
    let base = format!("http://{addr}");
    (child, base)
}

async fn introspect(base: &str, token: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/id/connect/introspect"))
        .basic_auth("erpgate.edge", Some("demo-edge-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = start(dir.path());
    let http = reqwest::Client::new();
    let pat: Value = http
        .post(format!("{base}/admin/reference-tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pat = pat["token"].as_str().unwrap().to_owned();
    let cc: Value = http
        .post(format!("{base}/id/connect/token"))
        .basic_auth("demo.service", Some("demo-service-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = cc["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&base, &pat).await["active"], true);
    // SIGKILL: no shutdown hook runs.
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, base) = start(dir.path());
    assert_eq!(
        introspect(&base, &pat).await["active"],
        true,
        "the PAT survived"
    );
    assert_eq!(
        introspect(&base, &jwt).await["active"],
        true,
        "the signing key survived"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

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

use net::{introspect, mint_pat, service_token};

mod net;

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

#[tokio::test]
async fn tokens_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = start(dir.path());
    let pat = mint_pat(&base, ADMIN).await;
    let jwt = service_token(&base, "read").await;
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

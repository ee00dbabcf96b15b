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

const ADMIN: &str = "durability-admin-credential-0123456789";

/// `erpgate --demo serve` on free loopback ports, storing in `data`, its
/// banner on a pipe.
fn spawn_demo(data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_erpgate"))
        .args(["--demo", "serve", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .args(["--public-url", "https://durability.test", "--data"])
        .arg(data)
        .env("ERPGATE_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A demo host on free loopback ports: (process, public base, admin base).
fn start(data: &std::path::Path) -> (Child, String, String) {
    let mut child = spawn_demo(data);
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    // "  metrics       http://127.0.0.1:PORT/metrics": the admin listener.
    let mut operator = String::new();
    while !operator.starts_with("  metrics") {
        operator.clear();
        assert!(
            reader.read_line(&mut operator).unwrap() > 0,
            "no metrics line"
        );
    }
    let operator = operator
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_owned();
    // Keep draining the banner: a closed pipe would kill the host on its
    // next line of output.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
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
    (child, base, operator)
}

#[tokio::test]
async fn tokens_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, operator) = start(dir.path());
    let pat = mint_pat(&operator, ADMIN).await;
    let jwt = service_token(&base, "read").await;
    assert_eq!(introspect(&base, &pat).await["active"], true);
    // SIGKILL: no shutdown hook runs.
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, base, _) = start(dir.path());
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

/// Under load: clients mint PATs and client-credentials tokens as fast as
/// they can while the host is killed with SIGKILL mid-run; after a restart,
/// every token a client received still introspects active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_a_client_received_survives_kill_9_under_load() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, operator) = start(dir.path());
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (base, operator, received, failed) = (
                base.clone(),
                operator.clone(),
                received.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    let request = if i % 2 == 0 {
                        http.post(format!("{operator}/admin/reference-tokens"))
                            .bearer_auth(ADMIN)
                            .json(&serde_json::json!({"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}))
                    } else {
                        http.post(format!("{base}/id/connect/token"))
                            .basic_auth("demo.service", Some("demo-service-secret"))
                            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
                    };
                    // A response fully received is a token the client holds;
                    // anything cut off by the kill does not count.
                    let Ok(r) = request.send().await else { break };
                    let Ok(body) = r.json::<serde_json::Value>().await else { break };
                    let token = body["token"].as_str().or(body["access_token"].as_str());
                    match token {
                        Some(t) => received.lock().unwrap().push(t.to_owned()),
                        None => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL mid-run
    child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let tokens = received.lock().unwrap().clone();
    assert!(tokens.len() > 20, "the load ran: {} tokens", tokens.len());

    let (mut child, base, _) = start(dir.path());
    let mut inactive = 0;
    for t in &tokens {
        if introspect(&base, t).await["active"] != true {
            inactive += 1;
        }
    }
    eprintln!(
        "kill -9 under load: {} tokens received before the kill, {} still active after restart, {} requests refused",
        tokens.len(),
        tokens.len() - inactive,
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(inactive, 0, "every token a client received survived");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Regression: the host printed its banner with `println!`, which panics when
/// stdout is closed (`erpgate serve | head -1`), killing the server a moment
/// after it started. Found by the kill -9 load test, whose harness closed the
/// pipe after the first line.
#[tokio::test]
async fn banner_to_a_closed_stdout_does_not_kill_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_demo(dir.path());
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap(); // the reader, and the pipe, close here
    let addr = first
        .trim()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the host is still running"
    );
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

//! The adversarial suite against the real `erpgate` binary over loopback:
//! what an attacker who reads the code tries first. Each test names the hole
//! it holds shut; `HARDENING.md` lists them.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, Command, Stdio};

mod net;

/// The binary with these arguments, no inherited configuration.
fn erpgate(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_erpgate"));
    command
        .args(args)
        .env_remove("ERPGATE_CONFIG")
        .env_remove("ERPGATE_ADMIN_TOKEN")
        .env_remove("ERPGATE_DATABASE")
        .env("RUST_LOG", "warn");
    command
}

/// Runs a command expected to refuse: its exit status and standard error.
fn refused(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(!out.status.success(), "it started");
    String::from_utf8(out.stderr).unwrap()
}

/// Item 9: any command without `--config` ran the demo instance, whose
/// admin password and secrets are published. Now it refuses and says why.
#[test]
fn without_config_or_demo_the_host_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0"],
        vec!["up"],
        vec!["apps", "list"],
        vec!["token", "list"],
    ] {
        let err = refused(erpgate(&args).arg("--data").arg(dir.path()));
        assert!(
            err.contains("--config") && err.contains("--demo"),
            "{args:?}: {err}"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was written"
    );
}

/// Item 9: the demo instance on `--listen 0.0.0.0` served its published
/// credentials to the network. Demo mode is loopback only, every listener.
#[test]
fn the_demo_instance_refuses_a_listener_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for args in [
        vec!["--demo", "--data", data, "serve", "--listen", "0.0.0.0:0"],
        vec![
            "--demo",
            "--data",
            data,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ],
        vec!["--demo", "--data", data, "up", "--gateway", "0.0.0.0:0"],
        vec!["--demo", "--data", data, "up", "--identity", "[::]:0"],
    ] {
        let err = refused(&mut erpgate(&args));
        assert!(err.contains("loopback only"), "{args:?}: {err}");
    }
}

/// Item 13: `ERPGATE_ADMIN_TOKEN` had no minimum strength.
#[test]
fn a_weak_admin_credential_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for weak in [
        "admin",
        "short-but-not-enough-1234567",
        " padded-credential-0123456789abcdef ",
    ] {
        let err = refused(
            erpgate(&["--demo", "serve", "--listen", "127.0.0.1:0"])
                .arg("--data")
                .arg(dir.path())
                .env("ERPGATE_ADMIN_TOKEN", weak),
        );
        assert!(err.contains("ERPGATE_ADMIN_TOKEN"), "{weak:?}: {err}");
    }
}

/// A host started from a real configuration file: its process, banner
/// lines up to the admin credential line, and its admin base URL.
fn start_configured(config: &std::path::Path) -> (Child, Vec<String>, String) {
    let mut child = erpgate(&["serve"])
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "banner: {lines:?}"
        );
        let done = line.starts_with("  admin credential");
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let metrics = lines
        .iter()
        .find(|l| l.starts_with("  metrics"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_owned();
    (child, lines, metrics)
}

/// Item 13: the admin credential was printed to stdout, where logs and CI
/// keep it. A real instance writes a generated one to a file only its owner
/// reads, and prints where; the admin API answers on its own listener only.
#[tokio::test]
async fn a_real_instance_never_prints_its_admin_credential() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("erpgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[[apps]]\nclient_id = \"svc\"\nsecret = \"a-real-secret-nobody-prints\"\nsystem_user = \"svc-user\"\nsystem_user_allowed = true\nscope = \"read\"\n\n[[users]]\nlogin = \"svc-user\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let (mut child, banner, operator) = start_configured(&config);
    let file = dir.path().join("data/admin-credential");
    let mut credential = String::new();
    std::fs::File::open(&file)
        .unwrap()
        .read_to_string(&mut credential)
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only");
    }
    let text = banner.join("\n");
    assert!(credential.len() >= 32);
    assert!(!text.contains(&credential), "{text}");
    assert!(!text.contains("a-real-secret-nobody-prints"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    let (status, _) = net::admin_call(
        &operator,
        &credential,
        "GET",
        "/admin/reference-tokens",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let public = banner[0]
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let (status, _) = net::admin_call(
        &format!("http://{public}"),
        &credential,
        "GET",
        "/admin/reference-tokens",
        None,
    )
    .await;
    assert_eq!(status, 404, "not on the public listener");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Item 9: seeding only inserted, so an app edited in the file (a scope
/// withdrawn, the app disabled) kept its stored form, and demo records
/// survived a switch to a real configuration unnoticed. The file is now the
/// source of truth for what it declares, and demo leftovers are named.
#[test]
fn the_configuration_file_is_the_source_of_truth_and_demo_leftovers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("erpgate.toml");
    let write = |scope: &str, enabled: bool| {
        std::fs::write(
            &config,
            format!(
                "[server]\ndata_dir = \"{}\"\n\n[[apps]]\nclient_id = \"svc\"\nsecret = \"a-real-secret-0123456789\"\nsystem_user = \"svc-user\"\nsystem_user_allowed = true\nscope = \"{scope}\"\nenabled = {enabled}\n\n[[users]]\nlogin = \"svc-user\"\n",
                data.display()
            ),
        )
        .unwrap();
    };
    let list = || {
        let out = erpgate(&["apps", "list"])
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    write("read update", true);
    let (apps, warnings) = list();
    assert!(
        apps.contains("svc Confidential enabled=true scope=\"read update\""),
        "{apps}"
    );
    assert!(!warnings.contains("demo record"), "{warnings}");
    write("read", false);
    let (apps, _) = list();
    assert!(
        apps.contains("svc Confidential enabled=false scope=\"read\""),
        "{apps}"
    );

    // The demo instance run once in the same directory leaves its records.
    let out = erpgate(&["--demo", "apps", "list"])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_, warnings) = list();
    for named in [
        "app demo.service with the demo secret",
        "user admin with the demo password",
    ] {
        assert!(warnings.contains(named), "{named}: {warnings}");
    }
}

/// `erpgate serve` for `config` (a file) or the demo (`None`) with a known
/// admin credential: (process, public base, admin base).
fn serve(config: Option<&std::path::Path>, data: &std::path::Path) -> (Child, String, String) {
    let mut command = match config {
        Some(path) => {
            let mut c = erpgate(&["serve"]);
            c.arg("--config").arg(path);
            c
        }
        None => erpgate(&["--demo", "serve"]),
    };
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(data)
        .env("ERPGATE_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let (mut public, mut operator) = (None, None);
    while operator.is_none() {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the host did not start"
        );
        if public.is_none() {
            public = line.split_whitespace().nth(4).map(str::to_owned);
        }
        if line.starts_with("  metrics") {
            operator = line
                .split_whitespace()
                .nth(1)
                .map(|u| u.trim_end_matches("/metrics").to_owned());
        }
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (child, public.unwrap(), operator.unwrap())
}

const ADMIN: &str = "attacks-admin-credential-0123456789abcdef";

/// Argon2 verifications the host has run, from its metrics.
async fn verifications(operator: &str) -> u64 {
    let text = reqwest::get(format!("{operator}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("erpgate_password_verifications_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Item 10: the counter was checked, Argon2 ran, then the counter moved, so
/// N parallel guesses got N verifications. Now each guess is counted first:
/// 50 parallel wrong passwords for one user, over ErpLogin and legacy Basic,
/// cost at most the configured number of Argon2 runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_wrong_passwords_cost_at_most_the_configured_verifications() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, operator) = serve(None, dir.path());
    let before = verifications(&operator).await;
    let http = reqwest::Client::new();
    let guesses: Vec<_> = (0..50)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let guess = format!("guess-{i}");
                let r = if i % 2 == 0 {
                    http.post(format!("{base}/api/domain/login"))
                        .json(
                            &serde_json::json!({"user": "alice", "pass": guess, "app": "demo.bi"}),
                        )
                        .send()
                        .await
                } else {
                    http.get(format!("{base}/api/domain/odata/Crm_Customers"))
                        .header("authorization", basic("demo.bi\\alice", &guess))
                        .send()
                        .await
                };
                r.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap());
    }
    let ran = verifications(&operator).await - before;
    let limit = u64::from(erpgate_identity::passwords::PAIR_LIMIT);
    assert!(ran <= limit, "{ran} Argon2 runs for 50 guesses");
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u64,
        ran,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Peak resident memory of a process, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

/// Item 10: every legacy Basic attempt for an unknown user cost an Argon2
/// run (19 MiB) with no bound, an unauthenticated way to exhaust memory and
/// CPU. 1,000 attempts, each from its own client address (behind a trusted
/// proxy, so no address limit helps), keep the host under 200 MB and every
/// other endpoint answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unknown_user_basic_attempts_stay_under_200_mb() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("erpgate.toml");
    std::fs::write(
        &config,
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[[apps]]\nclient_id = \"bi\"\nsecret = \"bi-secret-0123456789\"\nbasic_auth = true\ninternal_users = true\nscope = \"read\"\n",
    )
    .unwrap();
    let (mut child, base, operator) = serve(Some(&config), &dir.path().join("data"));
    let http = reqwest::Client::new();
    let flood = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            // 250 in flight at a time.
            let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(250));
            let mut attempts = tokio::task::JoinSet::new();
            for i in 0..1000u32 {
                let permit = gate.clone().acquire_owned().await.unwrap();
                let http = http.clone();
                let url = format!("{base}/api/domain/odata/Crm_Customers");
                attempts.spawn(async move {
                    let status = http
                        .get(url)
                        .header("authorization", basic(&format!("bi\\nobody-{i}"), "x"))
                        .header("x-forwarded-for", format!("10.{}.{}.1", i / 250, i % 250))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    drop(permit);
                    status
                });
            }
            attempts.join_all().await
        })
    };
    // Meanwhile the other endpoints answer.
    let mut slowest = std::time::Duration::ZERO;
    while !flood.is_finished() {
        let started = std::time::Instant::now();
        for path in ["/health", "/id/.well-known/openid-configuration"] {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
        }
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let statuses = flood.await.unwrap();
    let peak = peak_memory(child.id());
    eprintln!(
        "1,000 unknown-user Basic attempts: peak RSS {} MB, {} refused (401), {} turned away (503), {} Argon2 runs; slowest health and discovery pair {:?}",
        peak / 1_000_000,
        statuses.iter().filter(|s| **s == 401).count(),
        statuses.iter().filter(|s| **s == 503).count(),
        verifications(&operator).await,
        slowest
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(peak < 200_000_000, "peak RSS {peak} bytes");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Item 12: every `GET /id/account/login` and `/id/connect/authorize` wrote
/// a pending sign-in row (with `state` and `nonce` of any length), and an
/// unknown `ErpSession` value wrote an update: anyone could make the host
/// write, and with SQLite's one writer, wait. With the database's write lock
/// held elsewhere, what anyone can send still answers at once: the sign-in
/// before login travels MAC'd in the form, and an unknown session is only
/// read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, _) = serve(None, dir.path());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!(
        "{base}/id/connect/authorize?client_id=demo.webapp&redirect_uri=http://localhost:3000/signin-oidc&response_type=code&scope=openid&state=s"
    );
    // Another process holds the write lock for the whole test.
    let lock = rusqlite::Connection::open(dir.path().join("erpgate.sqlite3")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();

    for url in [format!("{base}/id/account/login"), authorize.clone()] {
        let r = http.get(&url).send().await.expect("answered at once");
        assert_eq!(r.status(), 200, "{url}");
        let page = r.text().await.unwrap();
        assert!(page.contains("name=\"request\""), "{page}");
    }
    for value in [
        "ErpSession 0123456789ABCDEF0123456789ABCDEF",
        "ErpSession x",
    ] {
        let r = http
            .get(format!("{base}/api/domain/odata/Crm_Customers"))
            .header("authorization", value)
            .send()
            .await
            .expect("answered at once");
        assert_eq!(r.status(), 401, "{value}");
    }
    // Every parameter the form carries back is bounded.
    let long = "s".repeat(513);
    let r = http
        .get(authorize.replace("state=s", &format!("state={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{authorize}&x={}", "y".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    lock.execute_batch("ROLLBACK").unwrap();

    // A sealed sign-in cannot be altered: one changed character is refused.
    let b = net::browser();
    let page = net::get_text(&b, &authorize).await;
    let (request, csrf) = (net::field(&page, "request"), net::field(&page, "csrf"));
    let tampered = format!("{}{}", &request[..10], request[10..].replacen('A', "B", 1));
    assert_ne!(tampered, request);
    for sealed in [tampered.as_str(), request.as_str()] {
        let r = net::post_form(
            &b,
            &format!("{base}/id/account/login"),
            &[
                ("request", sealed),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await;
        let expected = if sealed == request { 200 } else { 400 };
        assert_eq!(r.status(), expected, "{sealed}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `erpgate --demo up` on free loopback ports (in front of `upstream` when
/// given): (process, identity base, gateway base).
fn up(upstream: Option<&str>, data: &std::path::Path) -> (Child, String, String) {
    let filter = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/envoy/erpgate_filter.wasm");
    let mut command = erpgate(&["--demo", "up"]);
    command
        .args([
            "--identity",
            "127.0.0.1:0",
            "--identity-admin",
            "127.0.0.1:0",
        ])
        .args(["--gateway", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--filter")
        .arg(filter)
        .arg("--data")
        .arg(data)
        .env("ERPGATE_ADMIN_TOKEN", ADMIN);
    if let Some(u) = upstream {
        command.args(["--upstream", u]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let (mut identity, mut gateway) = (None, None);
    while identity.is_none() || gateway.is_none() {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stack did not start"
        );
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["identity", "host", url, ..] => {
                identity = Some(url.trim_end_matches("/id").to_owned());
            }
            ["ERP", "API", url, ..] => gateway = Some((*url).to_owned()),
            _ => {}
        }
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (child, identity.unwrap(), gateway.unwrap())
}

async fn status(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> u16 {
    let mut request = reqwest::Client::new().request(method.parse().unwrap(), url);
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.unwrap().status().as_u16()
}

/// Items 1, 2, 7, 8 and 15 against `erpgate --demo up` as a user runs it: the
/// real binary, the real filter in its gateway, the emulated API behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_refuses_what_the_review_got_through() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, identity, gateway) = up(None, dir.path());
    let read = net::service_token(&identity, "read").await;
    let bearer = format!("Bearer {read}");
    let auth = [("authorization", bearer.as_str())];
    let odata = format!("{gateway}/api/domain/odata");
    // 1: an encoded underscore rides no other route than the decoded one,
    // and a path parameter is refused. 2: OData reaches security entities
    // only with sec.
    for (path, expected) in [
        ("Systems_Security_Users", 403),
        ("Systems%5FSecurity_Users", 403),
        ("Systems%5fSecurity%5FUsers", 403),
        ("x/..;/Crm_Customers", 400),
        ("Crm_Customers?$expand=User", 403),
        ("General_Contacts_Persons(1)/User", 403),
        ("Crm_Customers", 200),
    ] {
        let url = format!("{odata}/{path}");
        assert_eq!(status("GET", &url, &auth, None).await, expected, "{path}");
    }
    // 7: a community user never reaches the API through legacy Basic.
    let customers = format!("{odata}/Crm_Customers");
    assert_eq!(
        status(
            "GET",
            &customers,
            &[],
            Some(("demo.bi\\bob", "bob-password"))
        )
        .await,
        401
    );
    assert_eq!(
        status(
            "GET",
            &customers,
            &[],
            Some(("demo.bi\\alice", "alice-password"))
        )
        .await,
        200
    );
    // 8: a public client gets no service token.
    let r = reqwest::Client::new()
        .post(format!("{identity}/id/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo.spa"),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 401), "{}", r.status());
    // 15: a cross-site link to end session, without id_token_hint, never
    // redirects anywhere (a signed-in browser gets a confirmation page:
    // host/cli/tests/api.rs).
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{identity}/id/connect/endsession?post_logout_redirect_uri=http://localhost:3000/signout-callback-oidc"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("location").is_none());
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Items 3 and 14 against `erpgate --demo up --upstream`: what reaches an
/// upstream that folds `_` into `-`, or honours `Connection`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_strips_what_upstreams_would_misread() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, _task) = net::echo_upstream().await;
    let (mut child, identity, gateway) = up(Some(&format!("http://{echo}")), dir.path());
    let token = net::service_token(&identity, "read").await;
    let seen: serde_json::Value = reqwest::Client::new()
        .get(format!("{gateway}/api/domain/odata/Crm_Customers"))
        .header("authorization", format!("Bearer {token}"))
        .header("x_erp_subject", "root")
        .header("X_Erp_Is_Admin", "true")
        .header("connection", "x-erp-client-id, keep-alive")
        .header("x-erp-client-id", "spoofed")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let headers = seen["headers"].as_object().unwrap();
    for name in ["x_erp_subject", "x_erp_is_admin"] {
        assert!(!headers.contains_key(name), "{name}: {seen}");
    }
    assert_eq!(headers["x-erp-client-id"], "demo.service", "{seen}");
    child.kill().unwrap();
    child.wait().unwrap();
}

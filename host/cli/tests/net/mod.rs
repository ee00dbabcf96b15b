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

use erpgate_identity::clock::SystemClock;
use erpgate_identity::config::Config;
use erpgate_store::SqliteStore;
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

/// A PAT for alice on demo.reports, through the admin API at `operator`
/// (the host's admin listener).
pub async fn mint_pat(operator: &str, admin: &str) -> String {
    mint(
        operator,
        admin,
        json!({"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}),
    )
    .await
}

/// A reference token minted through the admin API.
pub async fn mint(operator: &str, admin: &str, request: Value) -> String {
    let (_, issued) = admin_call(
        operator,
        admin,
        "POST",
        "/admin/reference-tokens",
        Some(request),
    )
    .await;
    issued["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{issued}"))
        .to_owned()
}

/// A call to a host's admin API (its admin listener, `base`) with this credential: (status, JSON body,
/// `Null` when there is none).
pub async fn admin_call(
    base: &str,
    admin: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(admin);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sends a request with a bearer token: (status, JSON body).
pub async fn bearer(url: &str, method: &str, token: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    send(url, method, &[("authorization", auth.as_bytes())]).await
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
pub fn introspections(state: &erpgate_cli::Host) -> u64 {
    state
        .identity
        .metrics
        .render()
        .lines()
        .filter(|l| {
            l.starts_with("erpgate_requests_total") && l.contains("endpoint=\"introspect\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The demo configuration, storing in `dir`.
pub fn demo_in(dir: &std::path::Path) -> Config {
    let mut config = Config::demo();
    config.server.data_dir = dir.to_owned();
    config
}

/// The demo host on a free loopback port, storing in `dir`; admin credential `admin`.
pub async fn start_demo_host(dir: &std::path::Path) -> erpgate_cli::Running {
    start_host(dir, Config::demo(), Arc::new(SystemClock)).await
}

/// A host with this configuration and clock on a free loopback port.
pub async fn start_host(
    dir: &std::path::Path,
    mut config: Config,
    clock: Arc<dyn erpgate_identity::clock::Clock>,
) -> erpgate_cli::Running {
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.admin_listen = "127.0.0.1:0".parse().unwrap();
    let store = Arc::new(SqliteStore::open(dir).unwrap());
    erpgate_cli::start(config, store, clock, "admin", false)
        .await
        .unwrap()
}

/// A fresh database on the test PostgreSQL server (`ERPGATE_TEST_POSTGRES`,
/// a URL to its `postgres` database; `scripts/postgres start` prints one),
/// or `None` when none is configured. `scripts/test` starts a server and sets
/// `ERPGATE_REQUIRE_POSTGRES=1`, so there a missing server fails the test.
pub async fn postgres_database() -> Option<String> {
    let Ok(server) = std::env::var("ERPGATE_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("ERPGATE_REQUIRE_POSTGRES").is_none(),
            "ERPGATE_TEST_POSTGRES is not set but ERPGATE_REQUIRE_POSTGRES is"
        );
        eprintln!("skipped: set ERPGATE_TEST_POSTGRES to run the PostgreSQL tests");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let name = format!(
        "erpgate_test_{}",
        erpgate_store::secrets::random_hex(8).to_lowercase()
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// A host replica on PostgreSQL at `url`, on a free loopback port.
pub async fn start_replica(url: &str, mut config: Config) -> erpgate_cli::Running {
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.admin_listen = "127.0.0.1:0".parse().unwrap();
    config.server.database = Some(url.to_owned());
    let store = erpgate_cli::open_store(&config).await.unwrap();
    erpgate_cli::start(config, store, Arc::new(SystemClock), "admin", false)
        .await
        .unwrap()
}

/// An upstream that answers with what reached it (method, path, headers),
/// so tests can see what the gateway forwards.
pub async fn echo_upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, Method, Uri};
    let app =
        axum::Router::new().fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
            let seen: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        json!(String::from_utf8_lossy(v.as_bytes())),
                    )
                })
                .collect();
            axum::Json(
                json!({ "method": method.as_str(), "path": uri.to_string(), "headers": seen }),
            )
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

// ---- Interactive sign-in, as a browser would do it ----

pub const REDIRECT: &str = "http://localhost:3000/signin-oidc";

/// A browser stand-in: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A hidden field's value in a page.
pub fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

/// The query parameters of a redirect's Location.
pub fn location_params(response: &reqwest::Response) -> Vec<(String, String)> {
    let location = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no redirect: {}", response.status()))
        .to_str()
        .unwrap();
    let query = location
        .split_once(['?', '#'])
        .map(|(_, q)| q)
        .unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(url).form(form).send().await.unwrap()
}

/// Signs in (and consents) through the pages; returns the final redirect.
pub async fn sign_in(
    b: &reqwest::Client,
    base: &str,
    authorize: &str,
    user: (&str, &str),
) -> reqwest::Response {
    let page = b.get(authorize).send().await.unwrap();
    if page.status() == 302 {
        return page; // signed in already, consent remembered
    }
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["x-frame-options"],
        "DENY",
        "the login page cannot be framed"
    );
    let page = page.text().await.unwrap();
    if page.contains("Allow access") {
        return consent(b, base, &page).await; // signed in already
    }
    assert!(page.contains("<label for=\"username\">"), "{page}");
    let request = field(&page, "request");
    let csrf = field(&page, "csrf");
    let after = post_form(
        b,
        &format!("{base}/id/account/login"),
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("username", user.0),
            ("password", user.1),
        ],
    )
    .await;
    if after.status() != 200 {
        return after;
    }
    let page = after.text().await.unwrap();
    assert!(page.contains("Allow access"), "{page}");
    consent(b, base, &page).await
}

/// Allows (and remembers) on a consent page.
async fn consent(b: &reqwest::Client, base: &str, page: &str) -> reqwest::Response {
    post_form(
        b,
        &format!("{base}/id/connect/consent"),
        &[
            ("request", &field(page, "request")),
            ("csrf", &field(page, "csrf")),
            ("decision", "allow"),
            ("remember", "yes"),
        ],
    )
    .await
}

/// The demo web app's confidential credentials.
pub const WEBAPP: (&str, &str) = ("demo.webapp", "demo-webapp-secret");

/// POSTs a form to `{issuer}/connect/token`, with Basic credentials when
/// given: (status, JSON body).
pub async fn token_endpoint(
    issuer: &str,
    client: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{issuer}/connect/token"))
        .form(form);
    if let Some((id, secret)) = client {
        request = request.basic_auth(id, Some(secret));
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The host's license table, from its admin listener `operator` (admin
/// credential `admin`).
pub async fn sessions_table(operator: &str) -> Value {
    admin_call(operator, "admin", "GET", "/admin/sessions", None)
        .await
        .1
}

/// A page's text, as this browser sees it.
pub async fn get_text(b: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    b.get(url).send().await.unwrap().text().await.unwrap()
}

/// Posts the login form found on `page`.
pub async fn submit_login(
    b: &reqwest::Client,
    base: &str,
    page: &str,
    user: (&str, &str),
) -> reqwest::Response {
    post_form(
        b,
        &format!("{base}/id/account/login"),
        &[
            ("request", &field(page, "request")),
            ("csrf", &field(page, "csrf")),
            ("username", user.0),
            ("password", user.1),
        ],
    )
    .await
}

/// Redeems a code issued to the demo web app for `REDIRECT`: (status, JSON).
pub async fn redeem_code(issuer: &str, code: &str) -> (u16, Value) {
    token_endpoint(
        issuer,
        Some(WEBAPP),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
}

/// Signs alice in to the demo web app through the pages: the code.
pub async fn user_code(base: &str, b: &reqwest::Client, scope: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", "demo.webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", scope),
        ])
        .finish();
    let done = sign_in(
        b,
        base,
        &format!("{base}/id/connect/authorize?{q}"),
        ("alice", "alice-password"),
    )
    .await;
    param(&location_params(&done), "code").unwrap().to_owned()
}

/// Signs alice in through the pages and redeems the code: (access, refresh).
pub async fn user_tokens(base: &str, b: &reqwest::Client, scope: &str) -> (String, Option<String>) {
    let code = user_code(base, b, scope).await;
    let (_, tokens) = redeem_code(&format!("{base}/id"), &code).await;
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().map(str::to_owned),
    )
}

/// Polls `api` with `headers` until it answers `status` four times in a
/// row (every VM or isolate behind it has caught up); fails if that takes a
/// second or more. Every other answer must be `before`.
pub async fn within_a_second(api: &str, headers: &[(&str, &[u8])], before: u16, status: u16) {
    let since = std::time::Instant::now();
    let mut in_a_row = 0;
    while in_a_row < 4 {
        let (got, body) = send(api, "GET", headers).await;
        if got == status {
            in_a_row += 1;
            continue;
        }
        in_a_row = 0;
        assert_eq!(got, before, "{body}");
        assert!(
            since.elapsed() < std::time::Duration::from_secs(1),
            "still {got} a second after the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        since.elapsed() < std::time::Duration::from_secs(1),
        "took {:?}",
        since.elapsed()
    );
}

/// App changes reach the edge in front of `api` within a second, through
/// the revocation feed: a narrowed app's cached reference-token verdict is
/// dropped and the token introspected again (now without the scope), and a
/// disabled app's JWTs are refused. `host` is the identity the edge trusts.
pub async fn app_changes_reach_the_edge(
    api: &str,
    host: &erpgate_cli::Host,
    admin_url: &str,
    identity: &str,
) {
    use erpgate_identity::changes;
    let store = host.identity.store.as_ref();
    let now = || host.identity.clock.now();
    let lifetime = host.identity.config.instance.access_token_lifetime_s;

    let pat = mint_pat(admin_url, "admin").await;
    let jwt = format!("Bearer {}", service_token(identity, "read").await);
    for _ in 0..2 {
        assert_eq!(
            send(api, "GET", &[("x-api-key", pat.as_bytes())]).await.0,
            200
        );
        assert_eq!(
            send(api, "GET", &[("authorization", jwt.as_bytes())])
                .await
                .0,
            200
        );
    }

    // demo.reports no longer grants `read`: the PAT's cached verdict goes.
    let mut reports = store.app("demo.reports").await.unwrap().unwrap();
    let before = reports.clone();
    reports.scope.remove("read");
    assert!(store.update_app(&reports).await.unwrap());
    assert!(changes::app_narrowed(&before, Some(&reports)));
    changes::app_changed(store, "demo.reports", now(), lifetime)
        .await
        .unwrap();
    within_a_second(api, &[("x-api-key", pat.as_bytes())], 200, 403).await;
    let (_, body) = send(api, "GET", &[("x-api-key", pat.as_bytes())]).await;
    assert_eq!(body["error"], "insufficient_scope", "{body}");

    // demo.service disabled: its JWT, cached and valid until `exp`, is refused.
    assert!(store.set_app_enabled("demo.service", false).await.unwrap());
    changes::app_changed(store, "demo.service", now(), lifetime)
        .await
        .unwrap();
    within_a_second(api, &[("authorization", jwt.as_bytes())], 200, 401).await;

    // Enabling it again does not bring back a token from before the change;
    // a new one works.
    assert!(store.set_app_enabled("demo.service", true).await.unwrap());
    let (status, _) = send(api, "GET", &[("authorization", jwt.as_bytes())]).await;
    assert_eq!(status, 401);
    tokio::time::sleep(std::time::Duration::from_secs(changes::VOID_MARGIN_S + 1)).await;
    let fresh = format!("Bearer {}", service_token(identity, "read").await);
    assert_eq!(
        send(api, "GET", &[("authorization", fresh.as_bytes())])
            .await
            .0,
        200
    );
    assert!(
        store.update_app(&before).await.unwrap(),
        "demo.reports as it was"
    );
}

/// The filter `.wasm` that `scripts/build-filter` builds.
pub fn filter_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/envoy/erpgate_filter.wasm")
}

/// What `erpgate up` runs (the demo host and the gateway with the real
/// filter) on free loopback ports, storing in `dir`, in front of `upstream`
/// (default: the emulated API); admin credential `admin`.
pub async fn up_stack(dir: &std::path::Path, upstream: Option<String>) -> erpgate_cli::up::Stack {
    let any = "127.0.0.1:0".parse().unwrap();
    let options = erpgate_cli::up::StackOptions {
        identity: any,
        identity_admin: any,
        gateway: any,
        upstream,
        admin: any,
        filter: filter_path(),
        config: demo_in(dir),
        jwks_cooldown_s: 1,
    };
    erpgate_cli::up::up(options, "admin").await.unwrap()
}

/// `tests/browser`, with its npm packages installed.
pub fn browser_scripts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` (scripts/test does)"
    );
    dir
}

/// What `openid-client.mjs` saw with DPoP through an edge: bound tokens by
/// authorization code + PKCE and by client credentials, each accepted with
/// its own proofs (after the edge's server nonce where `nonces`); the
/// bound token as a bearer token refused `invalid_token`, and its last
/// accepted request replayed refused `invalid_dpop_proof`, both with the
/// `DPoP` challenge.
pub fn assert_openid_client_dpop(seen: &Value, nonces: bool) {
    let dpop = &seen["dpop"];
    for (member, want) in [
        ("codeTokenType", serde_json::json!("dpop")),
        ("codeStatus", serde_json::json!(200)),
        ("ccTokenType", serde_json::json!("dpop")),
        ("ccStatus", serde_json::json!(200)),
        ("ccAgain", serde_json::json!(200)),
        ("bearerStatus", serde_json::json!(401)),
        ("replayStatus", serde_json::json!(401)),
    ] {
        assert_eq!(dpop[member], want, "{member}: {seen}");
    }
    let challenges = dpop["nonceChallenges"].as_u64().unwrap_or_default();
    assert_eq!(challenges >= 1, nonces, "nonce challenges: {seen}");
    for (member, error) in [
        ("bearerChallenge", "invalid_token"),
        ("replayChallenge", "invalid_dpop_proof"),
    ] {
        let challenge = dpop[member].as_str().unwrap_or_default();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains(&format!("error=\"{error}\"")),
            "{member}: {seen}"
        );
    }
}

/// Runs a Node script of `tests/browser` off the async threads; returns
/// its last output line as JSON.
pub async fn node(args: Vec<String>) -> Value {
    let dir = browser_scripts();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .current_dir(&dir)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

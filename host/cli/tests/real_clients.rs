//! Real HTTP on 127.0.0.1: the `oauth2` crate obtains a client-credentials
//! token, the core engine verifies it by fetching the JWKS, and PAT/SAT minted
//! by the `erpgate` CLI introspect active, then inactive after revocation, and
//! appear in the revocation feed the engine polls.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use erpgate::engine::Purpose;
use erpgate::{Decision, Engine, Outcome, Policy, Request, State, Step, Time};
use net::{EDGE, introspect};
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::{Value, json};

mod net;

/// A minimal native adapter: performs the engine's calls with reqwest.
struct Edge {
    engine: Engine,
    state: State,
    base: String,
    http: reqwest::Client,
}

impl Edge {
    fn new(base: &str) -> Self {
        let mut policy: Value =
            serde_json::from_str(include_str!("../../../policies/erpnet.json")).unwrap();
        policy["issuers"][0]["issuer"] = json!(format!("{base}/id"));
        let engine = Engine::new(Policy::compile(&policy.to_string()).unwrap());
        let state = engine.new_state(rand::random());
        Self {
            engine,
            state,
            base: base.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    fn now() -> Time {
        Time::from_millis(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
        )
    }

    async fn perform(&self, call: &erpgate::HttpCall) -> Outcome {
        assert_eq!(call.upstream, "identity");
        let url = format!("{}{}", self.base, call.path);
        let mut req = match call.method {
            "POST" => self.http.post(url).body(call.body.clone()),
            _ => self.http.get(url),
        };
        for (k, v) in &call.headers {
            req = req.header(k, v);
        }
        if call.purpose.needs_client_auth() {
            req = req.basic_auth(EDGE.0, Some(EDGE.1));
        }
        match req.timeout(call.timeout).send().await {
            Ok(r) => Outcome::Response {
                status: r.status().as_u16(),
                body: r.bytes().await.unwrap().to_vec(),
            },
            Err(e) if e.is_timeout() => Outcome::Timeout,
            Err(_) => Outcome::Failed,
        }
    }

    async fn tick(&mut self) {
        for bg in self.engine.due_calls(Self::now(), &mut self.state) {
            let outcome = self.perform(&bg.call).await;
            self.engine
                .complete(bg.job, outcome, Self::now(), &mut self.state);
        }
    }

    /// Decides; returns the decision and the purposes of the calls it needed.
    async fn decide(
        &mut self,
        method: &str,
        path: &str,
        header: (&str, &str),
    ) -> (Decision, Vec<Purpose>) {
        let headers = [(header.0, header.1.as_bytes())];
        let request = Request::new(method, path, &headers);
        let mut calls = Vec::new();
        let mut step = self.engine.start(&request, Self::now(), &mut self.state);
        loop {
            step = match step {
                Step::Decided(d) => return (d, calls),
                Step::Call { call, pending } => {
                    calls.push(call.purpose);
                    let outcome = self.perform(&call).await;
                    self.engine
                        .resume(pending, outcome, Self::now(), &mut self.state)
                }
                Step::Verify { .. } => panic!("no host crypto declared"),
                Step::Wait { .. } => panic!("single flight is off"),
            };
        }
    }
}

fn subject(d: &Decision) -> Option<String> {
    match d {
        Decision::Allow(a) => a
            .headers_to_set()
            .find(|(n, _)| *n == "x-erp-subject")
            .map(|(_, v)| v.to_owned()),
        Decision::Deny(_) | Decision::Answer(_) => None,
    }
}

fn cli(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_erpgate"))
        .arg("--demo")
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "erpgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let running = net::start_demo_host(dir.path()).await;
    let base = format!("http://{}", running.addr);

    // The oauth2 crate, as a real client.
    let client = BasicClient::new(ClientId::new("demo.service".into()))
        .set_client_secret(ClientSecret::new("demo-service-secret".into()))
        .set_token_uri(TokenUrl::new(format!("{base}/id/connect/token")).unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(token.scopes().unwrap(), &vec![Scope::new("read".into())]);
    let access = token.access_token().secret().clone();

    // The core engine fetches the JWKS over HTTP and decides.
    let mut edge = Edge::new(&base);
    edge.tick().await;
    let bearer = format!("Bearer {access}");
    let (d, calls) = edge
        .decide(
            "GET",
            "/api/domain/odata/Crm_Customers",
            ("authorization", &bearer),
        )
        .await;
    assert_eq!(d.status(), 200, "{d:?}");
    assert!(calls.is_empty(), "the JWKS came from the background fetch");
    assert_eq!(subject(&d).as_deref(), Some("SYSTEM_APPLICATION_USER"));
    let (d, _) = edge
        .decide(
            "POST",
            "/api/domain/odata/Crm_Customers",
            ("authorization", &bearer),
        )
        .await;
    assert_eq!(d.status(), 403, "read-only token on a write");

    // A PAT and a SAT from the CLI, against the running server's data directory.
    let pat = cli(
        dir.path(),
        &[
            "token",
            "issue",
            "--app",
            "demo.reports",
            "--kind",
            "pat",
            "--user",
            "alice",
            "--scope",
            "read",
            "--expires-in-days",
            "1",
            "--description",
            "ci",
        ],
    );
    let sat = cli(
        dir.path(),
        &[
            "token",
            "issue",
            "--app",
            "demo.reports",
            "--kind",
            "sat",
            "--scope",
            "read",
            "--expires-in-days",
            "1",
        ],
    );
    assert!(
        erpgate::credential::is_reference_token(&pat)
            && erpgate::credential::is_reference_token(&sat)
    );
    let p = introspect(&base, &pat).await;
    assert_eq!(
        (
            p["active"].as_bool(),
            p["erp_token_kind"].as_str(),
            p["sub"].as_str()
        ),
        (Some(true), Some("pat"), Some("alice"))
    );
    let s = introspect(&base, &sat).await;
    assert_eq!(
        (
            s["active"].as_bool(),
            s["erp_token_kind"].as_str(),
            s["sub"].as_str()
        ),
        (Some(true), Some("sat"), Some("SYSTEM_APPLICATION_USER"))
    );
    let (d, calls) = edge
        .decide(
            "GET",
            "/api/domain/odata/Crm_Customers",
            ("x-api-key", &pat),
        )
        .await;
    assert_eq!((d.status(), calls), (200, vec![Purpose::Introspection]));
    let (d, calls) = edge
        .decide(
            "GET",
            "/api/domain/odata/Crm_Customers",
            ("x-api-key", &pat),
        )
        .await;
    assert_eq!((d.status(), calls.len()), (200, 0), "served from the cache");

    // Revoke the PAT with the CLI (by id) and the SAT through RFC 7009.
    let listing = cli(dir.path(), &["token", "list"]);
    let pat_id = listing
        .lines()
        .find(|l| l.contains(" pat "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    cli(dir.path(), &["token", "revoke", &pat_id]);
    net::revoke_as_reports(&base, &sat).await;
    assert_eq!(introspect(&base, &pat).await, json!({"active": false}));
    assert_eq!(introspect(&base, &sat).await, json!({"active": false}));

    // The feed lists both; the engine applies it and refuses the cached PAT.
    let feed: Value = reqwest::Client::new()
        .get(format!("{base}/id/connect/revocation/feed?cursor="))
        .basic_auth(EDGE.0, Some(EDGE.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hashes: Vec<&str> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert!(hashes.contains(&erpgate::cache::TokenHash::of(&pat).to_hex().as_str()));
    assert!(hashes.contains(&erpgate::cache::TokenHash::of(&sat).to_hex().as_str()));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    edge.tick().await;
    let (d, calls) = edge
        .decide(
            "GET",
            "/api/domain/odata/Crm_Customers",
            ("x-api-key", &pat),
        )
        .await;
    assert_eq!(
        (d.status(), calls.len()),
        (401, 0),
        "evicted by the feed, no introspection needed"
    );

    running.stop().await;
}

/// `erpgate apps add --type public --system-user …` made a public client
/// that client credentials then served; the CLI refuses it, naming the flag.
#[test]
fn the_cli_gives_service_access_to_confidential_apps_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_erpgate"))
        .arg("--demo")
        .arg("--data")
        .arg(dir.path())
        .args([
            "apps",
            "add",
            "--client-id",
            "public.with.system.user",
            "--type",
            "public",
            "--system-user",
            "SYSTEM_APPLICATION_USER",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains("--system-user") && stderr.contains("confidential"),
        "{stderr}"
    );
    let listing = cli(dir.path(), &["apps", "list"]);
    assert!(!listing.contains("public.with.system.user"), "{listing}");
    // The same app as confidential is fine.
    cli(
        dir.path(),
        &[
            "apps",
            "add",
            "--client-id",
            "confidential.with.system.user",
            "--system-user",
            "SYSTEM_APPLICATION_USER",
        ],
    );
}

/// RFC 7009 for refresh tokens: with and without `token_type_hint`, by Basic
/// and by `client_secret_post`, the refresh token stops working for the
/// `oauth2` crate as a client, and the access token of its grant goes
/// inactive (2.1). Before, every one of these answered 200 and revoked
/// nothing: the crate refreshed each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_refresh_token_ends_its_grant() {
    let dir = tempfile::tempdir().unwrap();
    let running = net::start_demo_host(dir.path()).await;
    let base = format!("http://{}", running.addr);
    let revocation = format!("{base}/id/connect/revocation");
    let client = BasicClient::new(ClientId::new(net::WEBAPP.0.into()))
        .set_client_secret(ClientSecret::new(net::WEBAPP.1.into()))
        .set_token_uri(TokenUrl::new(format!("{base}/id/connect/token")).unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let b = net::browser();
    for (basic, hint) in [(true, true), (true, false), (false, true), (false, false)] {
        let (access, refresh) = net::user_tokens(&base, &b, "openid read offline_access").await;
        let refresh = refresh.unwrap();
        let mut form = vec![("token", refresh.as_str())];
        if hint {
            form.push(("token_type_hint", "refresh_token"));
        }
        let mut request = reqwest::Client::new().post(&revocation);
        if basic {
            request = request.basic_auth(net::WEBAPP.0, Some(net::WEBAPP.1));
        } else {
            form.extend([
                ("client_id", net::WEBAPP.0),
                ("client_secret", net::WEBAPP.1),
            ]);
        }
        let r = request.form(&form).send().await.unwrap();
        assert_eq!(r.status(), 200, "basic={basic} hint={hint}");
        let refreshed = client
            .exchange_refresh_token(&oauth2::RefreshToken::new(refresh.clone()))
            .request_async(&http)
            .await;
        assert!(
            refreshed.is_err(),
            "basic={basic} hint={hint}: the revoked refresh token still refreshed"
        );
        assert_eq!(
            introspect(&base, &access).await,
            json!({"active": false}),
            "basic={basic} hint={hint}: the grant's access token outlived it"
        );
    }
    // Another client's revocation of it is ignored (200, and it still works).
    let (_, refresh) = net::user_tokens(&base, &b, "openid read offline_access").await;
    let refresh = refresh.unwrap();
    net::revoke_as_reports(&base, &refresh).await;
    let refreshed = client
        .exchange_refresh_token(&oauth2::RefreshToken::new(refresh))
        .request_async(&http)
        .await;
    assert!(refreshed.is_ok(), "{refreshed:?}");
    running.stop().await;
}

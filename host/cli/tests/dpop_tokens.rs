//! DPoP at the identity host's token endpoint (RFC 9449 §5): bound access
//! tokens for every grant, single-use proofs, server nonces, public
//! clients' refresh tokens bound to their key, apps that require DPoP, and
//! what the edge makes of a bound token sent as a bearer token.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use erpgate_identity::clock::SystemClock;
use erpgate_testkit::Fixtures;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod net;

const SPA_REDIRECT: &str = "http://localhost:5173/callback";
const VERIFIER: &str = "dpop-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh proof for `POST {issuer}/connect/token`, signed by the fixture
/// key `key`, with `patch` merged into its claims.
fn proof(issuer: &str, key: &str, patch: Value) -> String {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let mut claims = json!({
        "jti": format!("jti-{}-{}", now(), SERIAL.fetch_add(1, Ordering::Relaxed)),
        "htm": "POST",
        "htu": format!("{issuer}/connect/token"),
        "iat": now(),
    });
    erpgate_testkit::merge_patch(&mut claims, &patch);
    erpgate_testkit::dpop_proof(&Fixtures::load_default().unwrap(), key, &claims, &json!({}))
        .unwrap()
}

/// A fresh proof for `GET htu` with `token`, signed by the fixture key `key`.
fn resource_proof(key: &str, htu: &str, token: &str, jti: &str) -> String {
    let claims = json!({
        "jti": format!("{jti}-{}", now()),
        "htm": "GET",
        "htu": htu,
        "iat": now(),
        "ath": erpgate::dpop::token_hash(token),
    });
    erpgate_testkit::dpop_proof(&Fixtures::load_default().unwrap(), key, &claims, &json!({}))
        .unwrap()
}

fn jkt(key: &str) -> String {
    let jwk = Fixtures::load_default()
        .unwrap()
        .key(key)
        .unwrap()
        .public_jwk()
        .unwrap();
    erpgate::dpop::thumbprint(jwk.as_object().unwrap()).unwrap()
}

/// `POST /connect/token` with these DPoP headers: (status, DPoP-Nonce, body).
async fn token(
    issuer: &str,
    client: Option<(&str, &str)>,
    proofs: &[&str],
    form: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{issuer}/connect/token"))
        .form(form);
    if let Some((id, secret)) = client {
        request = request.basic_auth(id, Some(secret));
    }
    for p in proofs {
        request = request.header("dpop", *p);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let nonce = r
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, nonce, r.json().await.unwrap_or(Value::Null))
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

const SERVICE: Option<(&str, &str)> = Some(("demo.service", "demo-service-secret"));
const CC: [(&str, &str); 2] = [("grant_type", "client_credentials"), ("scope", "read")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_a_proof_issue_a_bound_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let issuer = host.state.identity.issuer.clone();
    let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );

    let p = proof(&issuer, "ec-a", json!({}));
    let (status, _, body) = token(&issuer, SERVICE, &[&p], &CC).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["cnf"], json!({ "jkt": jkt("ec-a") }));
    let seen = net::introspect(&host.state.identity.public_url, access).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["token_type"], "DPoP");
    assert_eq!(seen["cnf"], json!({ "jkt": jkt("ec-a") }));

    // The same proof again: refused, nothing issued.
    let (status, _, body) = token(&issuer, SERVICE, &[&p], &CC).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );

    // Without a proof the token stays a bearer token.
    let (status, _, body) = token(&issuer, SERVICE, &[], &CC).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")));
    assert!(
        claims_of(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );

    // Every broken proof is refused as such.
    let other_uri = proof(
        &issuer,
        "ec-a",
        json!({"htu": format!("{issuer}/connect/introspect")}),
    );
    let get = proof(&issuer, "ec-a", json!({"htm": "GET"}));
    let stale = proof(&issuer, "ec-a", json!({"iat": now() - 3600}));
    let hs = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkhTMjU2In0.e30.c2ln";
    let (a, b) = (
        proof(&issuer, "ed-a", json!({})),
        proof(&issuer, "ed-a", json!({})),
    );
    for (name, proofs) in [
        ("another URI", vec![other_uri.as_str()]),
        ("GET", vec![get.as_str()]),
        ("stale", vec![stale.as_str()]),
        ("HS256", vec![hs]),
        ("two proofs", vec![a.as_str(), b.as_str()]),
    ] {
        let (status, _, body) = token(&issuer, SERVICE, &proofs, &CC).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{name}: {body}"
        );
    }

    // The edge: a bound token sent as a bearer token is refused.
    let api = format!(
        "{}/api/domain/odata/Crm_Customers",
        host.state.identity.public_url
    );
    let (status, body) = net::bearer(&api, "GET", access).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_clients_refresh_token_is_bound_to_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let (base, issuer) = (
        host.state.identity.public_url.clone(),
        host.state.identity.issuer.clone(),
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", "demo.spa"),
            ("redirect_uri", SPA_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid read offline_access"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let browser = net::browser();
    let done = net::sign_in(
        &browser,
        &base,
        &format!("{issuer}/connect/authorize?{q}"),
        ("alice", "alice-password"),
    )
    .await;
    let code = net::param(&net::location_params(&done), "code")
        .unwrap()
        .to_owned();
    let p = proof(&issuer, "ed-a", json!({}));
    let (status, _, body) = token(
        &issuer,
        None,
        &[&p],
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "demo.spa"),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt("ed-a")
    );
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // Userinfo takes the bound token with its proof, and not as a bearer token.
    let access = body["access_token"].as_str().unwrap();
    let userinfo = format!("{issuer}/connect/userinfo");
    let p = resource_proof("ed-a", &userinfo, access, "userinfo");
    let ask = |scheme: &str, proof: Option<&str>| {
        let mut request = reqwest::Client::new()
            .get(&userinfo)
            .header("authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ask("DPoP", Some(&p)).await, 200);
    assert_eq!(ask("DPoP", Some(&p)).await, 401, "a replayed proof");
    assert_eq!(
        ask("Bearer", None).await,
        401,
        "a bound token as a bearer token"
    );
    assert_eq!(ask("DPoP", None).await, 401, "no proof");

    let refresh_form = |token: &str| {
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", "demo.spa".to_owned()),
            ("refresh_token", token.to_owned()),
        ]
    };
    let form = refresh_form(&refresh);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Another key, or none: refused, and the refresh token is not spent.
    let thief = proof(&issuer, "ec-a", json!({}));
    for proofs in [vec![thief.as_str()], vec![]] {
        let (status, _, body) = token(&issuer, None, &proofs, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
    }
    // The key it is bound to: a new bound pair.
    let p = proof(&issuer, "ed-a", json!({}));
    let (status, _, body) = token(&issuer, None, &[&p], &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    // The rotated refresh token keeps the binding.
    let form = refresh_form(&next);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let thief = proof(&issuer, "rsa-a", json!({}));
    let (status, _, body) = token(&issuer, None, &[&thief], &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_and_apps_that_require_dpop() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = net::demo_in(dir.path());
    config.instance.dpop_nonces = true;
    let service = config
        .apps
        .iter_mut()
        .find(|a| a.client_id == "demo.service")
        .unwrap();
    service.require_dpop = true;
    let host = net::start_host(dir.path(), config, Arc::new(SystemClock)).await;
    let issuer = host.state.identity.issuer.clone();

    // No proof from an app that requires one.
    let (status, _, body) = token(&issuer, SERVICE, &[], &CC).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    // A proof without the nonce: use_dpop_nonce, and the nonce to use.
    let p = proof(&issuer, "ec-a", json!({}));
    let (status, nonce, body) = token(&issuer, SERVICE, &[&p], &CC).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let nonce = nonce.expect("a DPoP-Nonce header");
    let wrong = proof(&issuer, "ec-a", json!({"nonce": format!("{nonce}x")}));
    let (status, _, body) = token(&issuer, SERVICE, &[&wrong], &CC).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let p = proof(&issuer, "ec-a", json!({ "nonce": nonce }));
    let (status, fresh, body) = token(&issuer, SERVICE, &[&p], &CC).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    assert!(fresh.is_some(), "a success carries the current nonce too");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_and_its_proof_pass_the_gateway_and_the_api_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let stack = net::up_stack(dir.path(), None).await;
    let issuer = stack.host.state.identity.issuer.clone();
    let p = proof(&issuer, "ec-a", json!({}));
    let (status, _, body) = token(&issuer, SERVICE, &[&p], &CC).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );
    let api_proof = |serial: &str| resource_proof("ec-a", &api, &access, serial);
    let call = |proof: Option<String>, scheme: &str| {
        api_call(&api, ("authorization", format!("{scheme} {access}")), proof)
    };
    // The filter checks the proof, and the emulated API checks it again
    // behind it (the gateway keeps the client's authority, as Envoy does).
    let first = api_proof("1");
    assert_eq!(call(Some(first.clone()), "DPoP").await, (200, None));
    // The same proof again: a replay, refused with the DPoP challenge.
    let (status, challenge) = call(Some(first), "DPoP").await;
    let challenge = challenge.unwrap();
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    // A fresh proof passes (the token's verdict from the filter's cache).
    assert_eq!(call(Some(api_proof("2")), "DPoP").await, (200, None));
    // The token as a bearer token: refused.
    let (status, challenge) = call(None, "Bearer").await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    stack.stop().await;
}

/// `GET api` with one credential header and an optional `DPoP` proof:
/// (status, `WWW-Authenticate`).
async fn api_call(
    api: &str,
    credential: (&str, String),
    proof: Option<String>,
) -> (u16, Option<String>) {
    let mut request = reqwest::Client::new()
        .get(api)
        .header(credential.0, credential.1);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let r = request.send().await.unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), challenge)
}

/// A PAT minted bound to a DPoP key (the admin API's `dpop_jkt`):
/// introspection reports `cnf.jkt` and `token_type: DPoP`, so the filter
/// (and the API behind it) take it only with that key's proofs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_token_bound_to_a_key_passes_only_with_its_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let stack = net::up_stack(dir.path(), None).await;
    let admin = stack.host.admin_url();
    let request = |jkt: &str| {
        json!({"client_id": "demo.reports", "kind": "pat", "user": "alice", "scope": "read",
               "expires_in_days": 1, "dpop_jkt": jkt})
    };
    // Not a thumbprint: refused, nothing minted.
    for bad in ["abc", &"A".repeat(44), &jkt("ec-a")[..42]] {
        let (status, body) = net::admin_call(
            &admin,
            "admin",
            "POST",
            "/admin/reference-tokens",
            Some(request(bad)),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let pat = net::mint(&admin, "admin", request(&jkt("ec-a"))).await;
    let seen = net::introspect(&stack.host.state.identity.public_url, &pat).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["cnf"]["jkt"], jkt("ec-a"), "{seen}");
    assert_eq!(seen["token_type"], "DPoP", "{seen}");

    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );
    let dpop = || ("authorization", format!("DPoP {pat}"));
    let proof = |key: &str, serial: &str| Some(resource_proof(key, &api, &pat, serial));
    assert_eq!(
        api_call(&api, dpop(), proof("ec-a", "pat-1")).await,
        (200, None)
    );
    // Another key's proof, the token as a bearer token or as an API key:
    // each refused with the DPoP challenge.
    for (credential, proof, error) in [
        (dpop(), proof("ed-a", "pat-2"), "invalid_dpop_proof"),
        (
            ("authorization", format!("Bearer {pat}")),
            None,
            "invalid_token",
        ),
        (("x-api-key", pat.clone()), None, "invalid_token"),
    ] {
        let (status, challenge) = api_call(&api, credential, proof).await;
        let challenge = challenge.unwrap();
        assert_eq!(status, 401, "{challenge}");
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains(&format!("error=\"{error}\"")),
            "{challenge}"
        );
    }
    // An unbound PAT is still a bearer credential.
    let plain = net::mint_pat(&admin, "admin").await;
    assert_eq!(
        api_call(&api, ("authorization", format!("Bearer {plain}")), None)
            .await
            .0,
        200
    );
    stack.stop().await;
}

/// The gateway runs two VMs of the filter and deals requests out in turn:
/// a proof replayed at the other VM is refused by the filter itself (shared
/// data), with no upstream behind it to catch it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_replayed_at_another_vm_is_refused_by_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (echo, _echo_task) = net::echo_upstream().await;
    let stack = net::up_stack(dir.path(), Some(format!("http://{echo}"))).await;
    let issuer = stack.host.state.identity.issuer.clone();
    let p = proof(&issuer, "ed-a", json!({}));
    let (status, _, body) = token(&issuer, SERVICE, &[&p], &CC).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );
    let proof = resource_proof("ed-a", &api, access, "across-vms");
    let auth = format!("DPoP {access}");
    let headers = [
        ("authorization", auth.as_bytes()),
        ("dpop", proof.as_bytes()),
    ];
    let (first, _) = net::send(&api, "GET", &headers).await;
    assert_eq!(first, 200);
    for _ in 0..3 {
        let (status, body) = net::send(&api, "GET", &headers).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_dpop_proof")),
            "{body}"
        );
    }
    stack.stop().await;
}

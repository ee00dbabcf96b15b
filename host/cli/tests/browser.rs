//! The sign-in pages in a real browser (Debian's headless Chromium, driven by
//! playwright-core) and the authorization-code flow with npm openid-client as
//! a second, independent client. Both run against the demo host on
//! 127.0.0.1. `scripts/setup` installs Chromium; `scripts/test` installs the
//! npm packages (`tests/browser/package-lock.json`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

mod net;

use net::node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_and_consents() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let issuer = host.state.identity.issuer.clone();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("signin-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // RFC 7636-shaped challenge of a verifier this test keeps.
    let verifier = "chromium-test-verifier-0123456789-abcdefghijklmnop";
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", "demo.webapp"),
            ("redirect_uri", "http://localhost:3000/signin-oidc"),
            ("response_type", "code"),
            ("scope", "openid profile read"),
            ("state", "browser-state"),
            ("nonce", "browser-nonce"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let url = format!("{issuer}/connect/authorize?{query}");
    let seen = node(vec!["signin.mjs".into(), url, shots.display().to_string()]).await;
    assert_eq!(seen["error"], "The user name or password is incorrect.");
    let scopes = seen["scopes"].to_string();
    assert!(
        scopes.contains("Read data in your ERP database"),
        "{scopes}"
    );
    for shot in ["login.png", "login-error.png", "consent.png"] {
        let bytes = std::fs::read(shots.join(shot)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is a PNG screenshot");
    }
    // The browser landed on the redirect URI with a code that redeems.
    let landed = reqwest::Url::parse(seen["landed"].as_str().unwrap()).unwrap();
    let params: Vec<(String, String)> = landed.query_pairs().into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("state").as_deref(), Some("browser-state"));
    assert_eq!(get("iss").as_deref(), Some(issuer.as_str()));
    let code = get("code").unwrap();
    let (_, tokens) = net::token_endpoint(
        &issuer,
        Some(net::WEBAPP),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", net::REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_runs_the_flow_and_refresh_replay_kills_the_family() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let issuer = host.state.identity.issuer.clone();
    let seen = node(vec!["openid-client.mjs".into(), issuer]).await;
    assert_eq!(seen["sub"], "alice");
    assert_eq!(seen["aud"], "demo.webapp");
    assert_eq!(seen["sid"].as_str().map(str::len), Some(32));
    assert_eq!(seen["rotated"], true);
    assert_eq!(seen["replayFirst"], "invalid_grant");
    assert_eq!(
        seen["replayNewest"], "invalid_grant",
        "the family is revoked"
    );
    assert_eq!(seen["dpop"], serde_json::Value::Null);
    host.stop().await;
}

/// openid-client speaking DPoP (RFC 9449) against what `erpgate up` runs:
/// bound tokens by authorization code + PKCE and by client credentials,
/// each used on the emulated API through the gateway with openid-client's
/// own proofs; the bound token as a bearer token gets the DPoP challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_gets_dpop_bound_tokens_and_uses_them_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let stack = net::up_stack(dir.path(), None).await;
    let issuer = stack.host.state.identity.issuer.clone();
    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );
    let seen = node(vec!["openid-client.mjs".into(), issuer, api]).await;
    net::assert_openid_client_dpop(&seen, false);
    stack.stop().await;
}

//! Interactive sign-in over real HTTP on 127.0.0.1: the `openidconnect`
//! crate discovers the host and runs authorization code + PKCE, a
//! cookie-keeping client posts the login and consent forms, the ID token is
//! verified, refresh tokens rotate and a replay kills the family. Then SSO,
//! `prompt=login`, userinfo, endsession, and the attacks the issue lists.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

mod net;

use net::{
    REDIRECT, WEBAPP, browser, field, get_text, location_params, param, post_form, redeem_code,
    sign_in, submit_login, token_endpoint,
};

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&erpgate::decode_b64url(payload).unwrap()).unwrap()
}

/// The demo web app as the `openidconnect` crate sees it, discovered from
/// `issuer`.
type WebappClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The demo web app's client, and the HTTP client it talks through (which
/// does not follow redirects).
async fn webapp_client(issuer: &str) -> (WebappClient, reqwest::Client) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.to_owned()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(WEBAPP.0.into()),
        Some(ClientSecret::new(WEBAPP.1.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    (client, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_pkce_refresh_rotation_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let (client, http) = webapp_client(&issuer).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let b = browser();
    // A wrong password shows the error on the page.
    let page = get_text(&b, url.as_str()).await;
    let wrong = submit_login(&b, &base, &page, ("alice", "not-her-password")).await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("The user name or password is incorrect.")
    );

    let done = sign_in(&b, &base, url.as_str(), ("alice", "alice-password")).await;
    assert_eq!(done.status(), 302);
    let params = location_params(&done);
    assert!(
        done.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(REDIRECT)
    );
    assert_eq!(param(&params, "state"), Some(csrf.secret().as_str()));
    assert_eq!(param(&params, "iss"), Some(issuer.as_str()), "RFC 9207");
    let code = param(&params, "code").unwrap().to_owned();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("openid was requested");
    let verifier = client.id_token_verifier();
    let id_claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(id_claims.subject().as_str(), "alice");
    let at_hash = id_claims.access_token_hash().expect("at_hash");
    assert_eq!(
        *at_hash,
        AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap()
        )
        .unwrap()
    );
    let raw_id = claims_of(&id_token.to_string());
    assert_eq!(raw_id["aud"], "demo.webapp");
    let s_hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(csrf.secret().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    };
    assert_eq!(raw_id["s_hash"], s_hash.as_str(), "state was sent");
    assert_eq!(
        raw_id["exp"].as_u64().unwrap() - raw_id["iat"].as_u64().unwrap(),
        300
    );
    let access = claims_of(tokens.access_token().secret());
    assert_eq!(access["sub"], "alice");
    assert_eq!(access["client_id"], "demo.webapp");
    assert_eq!(access["is_admin"], "false");
    assert_eq!(access["amr"][0], "pwd");
    // ERP.net's user claims, with its types: flags as strings, scope as an array.
    assert_eq!(access["id"], "3f0b7a52-1c3e-4f6e-9c61-0a3c2b6f9d11");
    assert_eq!(access["idp"], "local");
    assert_eq!(access["name"], "Alice Example");
    assert_eq!(access["email"], "alice@demo.example");
    assert_eq!(access["email_verified"], "false");
    assert_eq!(access["user_type"], "InternalUser");
    assert_eq!(access["db"], "demo");
    assert_eq!(access["locale"], "en-US", "the default");
    let mut scope: Vec<&str> = access["scope"]
        .as_array()
        .expect("scope is an array")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    scope.sort_unstable();
    assert_eq!(scope, ["offline_access", "openid", "profile", "read"]);
    assert!(access["auth_time"].as_u64().is_some());
    assert!(
        access["aud"]
            .as_array()
            .unwrap()
            .contains(&Value::from("DomainAPI"))
    );
    let sid = access["sid"].as_str().unwrap().to_owned();
    assert_eq!(raw_id["sid"], sid.as_str());
    let first_access = tokens.access_token().secret().clone();

    // userinfo with that token (openid profile).
    let info: Value = http
        .get(format!("{issuer}/connect/userinfo"))
        .bearer_auth(&first_access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["sub"].as_str(), info["name"].as_str()),
        (Some("alice"), Some("Alice Example"))
    );

    // The code is single use: a replay fails and revokes what it issued.
    let (status, body) = redeem_code(&issuer, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let active = net::introspect(&base, &first_access).await;
    assert_eq!(
        active["active"], false,
        "code replay revoked the access token"
    );

    // A fresh sign-in (SSO: no login page, consent remembered), then two
    // refreshes that keep the session; replaying the first kills the family.
    let (challenge, pkce) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let silent = b.get(url.as_str()).send().await.unwrap();
    assert_eq!(silent.status(), 302, "SSO skips the pages");
    let code = param(&location_params(&silent), "code").unwrap().to_owned();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(pkce)
        .request_async(&http)
        .await
        .unwrap();
    let rt1 = tokens.refresh_token().unwrap().clone();
    assert_eq!(rt1.secret().len(), 64);
    assert!(
        rt1.secret()
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    let second = client
        .exchange_refresh_token(&rt1)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let rt2 = second.refresh_token().unwrap().clone();
    assert_ne!(rt1.secret(), rt2.secret(), "rotated");
    assert_eq!(
        claims_of(second.access_token().secret())["sid"],
        sid.as_str(),
        "same session"
    );
    let info: Value = http
        .get(format!("{issuer}/connect/userinfo"))
        .bearer_auth(second.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "alice");
    assert!(
        info.get("name").is_none(),
        "no profile scope, no profile claims"
    );
    let third = client
        .exchange_refresh_token(&rt2)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let rt3 = third.refresh_token().unwrap().clone();
    assert!(
        client
            .exchange_refresh_token(&rt1)
            .unwrap()
            .request_async(&http)
            .await
            .is_err()
    );
    assert!(
        client
            .exchange_refresh_token(&rt3)
            .unwrap()
            .request_async(&http)
            .await
            .is_err(),
        "a replay kills the whole family"
    );
    let active = net::introspect(&base, third.access_token().secret()).await;
    assert_eq!(active["active"], false);

    // The remembered consent is listed on the profile page and can be
    // withdrawn; the app then asks again.
    let profile = format!("{base}/profile/security/tokens");
    let page = get_text(&b, &profile).await;
    assert!(page.contains("Applications you allowed") && page.contains("Demo web app"));
    let withdrawn = post_form(
        &b,
        &format!("{base}/profile/security/consents/revoke"),
        &[
            ("csrf", &field(&page, "csrf")),
            ("client_id", "demo.webapp"),
        ],
    )
    .await;
    assert_eq!(withdrawn.status(), 200);
    let again = get_text(&b, url.as_str()).await;
    assert!(again.contains("Allow access?"), "consent asked again");

    // prompt=login shows the form again even with SSO; endsession ends it.
    let forced = b
        .get(format!("{}&prompt=login", url.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 200);
    let ask = get_text(
        &b,
        format!(
            "{issuer}/connect/endsession?client_id=demo.webapp&post_logout_redirect_uri=http://evil.example/&state=x"
        ),
    )
    .await;
    assert!(
        ask.contains("Sign out of ERP.net?"),
        "no hint: the user confirms"
    );
    let out = b
        .get(format!(
            "{issuer}/connect/endsession?client_id=demo.webapp&post_logout_redirect_uri=http://evil.example/&state=x&csrf={}",
            field(&ask, "csrf")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.status(),
        200,
        "an unregistered logout target is never followed"
    );
    assert!(out.headers().get("location").is_none());
    let after = b.get(url.as_str()).send().await.unwrap();
    assert_eq!(after.status(), 200, "signed out: the login page again");
    host.stop().await;
}

/// Builds an authorize URL by hand.
fn authorize(issuer: &str, pairs: &[(&str, &str)]) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{issuer}/connect/authorize?{q}")
}

/// BASE64URL(SHA-256(RIGHT_VERIFIER)).
const CHALLENGE: &str = "xHbTA8nQz7AxlCctZcUZZCnA1-KHGhNebQcDktX9pqU";
const RIGHT_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU2p1rrabc-s2tHbvXk";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU2p1rrabc-s2tHbvXk0"; // not the challenge's

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_the_authorization_endpoint_and_codes() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let b = browser();

    // Every redirect URI variant gets an error page, never a redirect.
    for variant in [
        "http://LOCALHOST:3000/signin-oidc",
        "http://localhost:3000/signin-oidc/",
        "http://localhost:3000/signin-oidc/extra",
        "http://evil@localhost:3000/signin-oidc",
        "http://localhost:3001/signin-oidc",
        "http://localhost:3000/signin-oidc#frag",
    ] {
        let r = b
            .get(authorize(
                &issuer,
                &[
                    ("client_id", "demo.webapp"),
                    ("redirect_uri", variant),
                    ("response_type", "code"),
                    ("scope", "openid read"),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{variant}");
        assert!(r.headers().get("location").is_none(), "{variant}");
    }
    // Unknown client: an error page too.
    let r = b
        .get(authorize(
            &issuer,
            &[("client_id", "nope"), ("redirect_uri", REDIRECT)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // PKCE `plain` and a public client without PKCE: redirected errors.
    let r = b
        .get(authorize(
            &issuer,
            &[
                ("client_id", "demo.webapp"),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
                ("state", "s1"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let p = location_params(&r);
    assert_eq!(
        (param(&p, "error"), param(&p, "state")),
        (Some("invalid_request"), Some("s1"))
    );
    let r = b
        .get(authorize(
            &issuer,
            &[
                ("client_id", "demo.spa"),
                ("redirect_uri", "http://localhost:5173/callback"),
                ("response_type", "code"),
                ("scope", "openid read"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        param(&location_params(&r), "error"),
        Some("invalid_request")
    );
    // State with CR/LF cannot inject headers: it is percent-encoded.
    let r = b
        .get(authorize(
            &issuer,
            &[
                ("client_id", "demo.webapp"),
                ("redirect_uri", REDIRECT),
                ("response_type", "token"),
                ("state", "a\r\nSet-Cookie: x=y"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(
        param(&location_params(&r), "state"),
        Some("a\r\nSet-Cookie: x=y")
    );

    // A code with a PKCE challenge: the verifier is required (no downgrade),
    // another client cannot redeem it, and 50 concurrent redemptions give
    // exactly one success.
    let url = authorize(
        &issuer,
        &[
            ("client_id", "demo.webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid read"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let done = sign_in(&b, &base, &url, ("alice", "alice-password")).await;
    let code = param(&location_params(&done), "code").unwrap().to_owned();
    let redeem =
        |client: (&'static str, &'static str), verifier: Option<&'static str>, code: String| {
            let issuer = issuer.clone();
            async move {
                let mut form = vec![
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT),
                ];
                if let Some(v) = verifier {
                    form.push(("code_verifier", v));
                }
                token_endpoint(&issuer, Some(client), &form).await
            }
        };
    let (status, body) = redeem(("demo.webapp", "demo-webapp-secret"), None, code.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "PKCE downgrade"
    );

    let done = sign_in(&b, &base, &url, ("alice", "alice-password")).await;
    let code = param(&location_params(&done), "code").unwrap().to_owned();
    let (status, body) = redeem(
        ("demo.reports", "demo-reports-secret"),
        Some(VERIFIER),
        code,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "another client"
    );

    let done = sign_in(&b, &base, &url, ("alice", "alice-password")).await;
    let code = param(&location_params(&done), "code").unwrap().to_owned();
    let tries = (0..50).map(|_| {
        tokio::spawn(redeem(
            ("demo.webapp", "demo-webapp-secret"),
            Some(RIGHT_VERIFIER),
            code.clone(),
        ))
    });
    let mut ok = 0;
    let mut refused = Vec::new();
    for t in tries.collect::<Vec<_>>() {
        match t.await.unwrap() {
            (200, _) => ok += 1,
            (_, body) => refused.push(
                body["error"].as_str().unwrap_or("?").to_owned()
                    + ": "
                    + body["error_description"].as_str().unwrap_or(""),
            ),
        }
    }
    assert!(
        refused.iter().all(|e| e.starts_with("invalid_grant")),
        "{refused:?}"
    );

    assert_eq!(ok, 1, "exactly one of 50 concurrent redemptions succeeds");

    // No scope: every scope configured on the app.
    let url = authorize(
        &issuer,
        &[
            ("client_id", "demo.webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
        ],
    );
    let done = sign_in(&b, &base, &url, ("alice", "alice-password")).await;
    let code = param(&location_params(&done), "code").unwrap().to_owned();
    let (status, body) = redeem(("demo.webapp", "demo-webapp-secret"), None, code).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("read update")));

    // Community users never receive API audiences.
    let url = authorize(
        &issuer,
        &[
            ("client_id", "demo.spa"),
            ("redirect_uri", "http://localhost:5173/callback"),
            ("response_type", "code"),
            ("scope", "openid read"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let bob = browser();
    let done = sign_in(&bob, &base, &url, ("bob", "bob-password")).await;
    let code = param(&location_params(&done), "code").unwrap().to_owned();
    let (_, body) = token_endpoint(
        &issuer,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "demo.spa"),
            ("code", &code),
            ("redirect_uri", "http://localhost:5173/callback"),
            ("code_verifier", RIGHT_VERIFIER),
        ],
    )
    .await;
    let access = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], format!("{issuer}/resources"));
    assert_eq!(body["scope"], "openid");

    // A CSRF token that does not match the cookie is refused.
    let page = get_text(&browser(), &url).await;
    let forged = submit_login(&browser(), &base, &page, ("alice", "alice-password")).await;
    assert_eq!(forged.status(), 403);

    // Brute force: the sixth failure for a user is throttled.
    let c = browser();
    let page = get_text(&c, &url).await;
    let (request, csrf) = (field(&page, "request"), field(&page, "csrf"));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = post_form(
            &c,
            &format!("{base}/id/account/login"),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("username", "admin"),
                ("password", "guess"),
            ],
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pat_self_service() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let tokens_url = format!("{base}/profile/security/tokens");

    // Not signed in: sent to the profile sign-in.
    let b = browser();
    let r = b.get(&tokens_url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/id/account/login");
    let page = get_text(&b, format!("{base}/id/account/login")).await;
    let r = submit_login(&b, &base, &page, ("alice", "alice-password")).await;
    assert_eq!(r.status(), 303);
    let page = get_text(&b, &tokens_url).await;
    assert!(page.contains("Demo reports"), "{page}");
    assert!(
        !page.contains("Demo audit tool"),
        "AdministratorsOnly apps are hidden from alice"
    );
    let csrf = field(&page, "csrf");

    // Minting shows the value once; it introspects active.
    let minted = post_form(
        &b,
        &tokens_url,
        &[
            ("csrf", &csrf),
            ("client_id", "demo.reports"),
            ("description", "ci export"),
            ("scope", "read"),
            ("days", "7"),
        ],
    )
    .await
    .text()
    .await
    .unwrap();
    let start = minted.find("enrt_").expect("the new token is shown");
    let value = minted[start..start + 69].to_owned();
    assert_eq!(net::introspect(&base, &value).await["active"], true);
    let again = get_text(&b, &tokens_url).await;
    assert!(again.contains("ci export"));
    assert!(!again.contains(&value), "shown once, never listed");

    // alice cannot mint for the admin-only app, nor without a valid CSRF token.
    let refused = post_form(
        &b,
        &tokens_url,
        &[
            ("csrf", &csrf),
            ("client_id", "demo.audit"),
            ("description", "x"),
            ("days", "1"),
        ],
    )
    .await;
    assert_eq!(refused.status(), 400);
    let forged = post_form(
        &b,
        &tokens_url,
        &[
            ("csrf", "0"),
            ("client_id", "demo.reports"),
            ("description", "x"),
            ("days", "1"),
        ],
    )
    .await;
    assert_eq!(forged.status(), 403);

    // Revoking it: inactive at once.
    let id = field(&again, "id");
    let r = post_form(
        &b,
        &format!("{tokens_url}/revoke"),
        &[("csrf", &csrf), ("id", &id)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(net::introspect(&base, &value).await["active"], false);

    // An administrator sees the admin-only app.
    let admin = browser();
    let page = get_text(&admin, format!("{base}/id/account/login")).await;
    submit_login(&admin, &base, &page, ("admin", "admin-password")).await;
    let page = get_text(&admin, &tokens_url).await;
    assert!(page.contains("Demo audit tool"));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_races_consent_csrf_and_nonce_injection() {
    let dir = tempfile::tempdir().unwrap();
    // The reuse interval off: with it, each concurrent retry of one token
    // succeeds and kills the pair before (tested below, on its own).
    let mut config = erpgate_identity::config::Config::demo();
    config.instance.refresh_reuse_interval_s = 0;
    let clock = std::sync::Arc::new(erpgate_identity::clock::SystemClock);
    let host = net::start_host(dir.path(), config, clock).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let b = browser();
    let url = authorize(
        &issuer,
        &[
            ("client_id", "demo.webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid read offline_access"),
            ("nonce", "n\r\nX-Injected: 1"),
            ("state", "s\r\nSet-Cookie: stolen=1"),
        ],
    );
    let done = sign_in(&b, &base, &url, ("alice", "alice-password")).await;
    assert!(done.headers().get("x-injected").is_none());
    assert!(
        done.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or("").contains("stolen")),
        "state cannot add headers"
    );
    let code = param(&location_params(&done), "code").unwrap().to_owned();
    let (_, tokens) = redeem_code(&issuer, &code).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["nonce"],
        "n\r\nX-Injected: 1",
        "the nonce is data in the ID token, nothing more"
    );

    // 100 concurrent uses of one refresh token: exactly one succeeds (and
    // the losers' replay then revokes the family).
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let tries: Vec<_> = (0..100)
        .map(|_| {
            let (issuer, refresh) = (issuer.clone(), refresh.clone());
            tokio::spawn(async move {
                token_endpoint(
                    &issuer,
                    Some(WEBAPP),
                    &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                )
                .await
                .0
            })
        })
        .collect();
    let mut ok = 0;
    for t in tries {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "exactly one of 100 concurrent refreshes succeeds");

    // The consent form checks its CSRF token against the cookie too.
    let fresh = browser();
    let url = authorize(
        &issuer,
        &[
            ("client_id", "demo.spa"),
            ("redirect_uri", "http://localhost:5173/callback"),
            ("response_type", "code"),
            ("scope", "openid read"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = get_text(&fresh, &url).await;
    let consent_page = submit_login(&fresh, &base, &page, ("alice", "alice-password"))
        .await
        .text()
        .await
        .unwrap();
    assert!(consent_page.contains("Allow access?"));
    let forged = post_form(
        &browser(), // another browser: no CSRF cookie
        &format!("{base}/id/connect/consent"),
        &[
            ("request", &field(&consent_page, "request")),
            ("csrf", &field(&consent_page, "csrf")),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(forged.status(), 403);
    host.stop().await;
}

/// `prompt=login` by the signed-in user: the session (and so its ERP session,
/// `sid`) is kept, and `auth_time` is the new authentication's (OIDC Core 2).
/// Before, the ID token after the second login still carried the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_login_by_the_same_user_moves_auth_time_and_keeps_the_session() {
    const NOW: u64 = 1_766_505_200;
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(erpgate_identity::clock::ManualClock::at(NOW));
    let host = net::start_host(
        dir.path(),
        erpgate_identity::config::Config::demo(),
        clock.clone(),
    )
    .await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let b = browser();
    let url = authorize(
        &issuer,
        &[
            ("client_id", "demo.webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("nonce", "n-1"),
        ],
    );
    let mut id_tokens = Vec::new();
    let mut raw_id_token = String::new();
    for forced in [false, true] {
        let target = if forced {
            format!("{url}&prompt=login")
        } else {
            url.clone()
        };
        let done = sign_in(&b, &base, &target, ("alice", "alice-password")).await;
        let code = param(&location_params(&done), "code").unwrap().to_owned();
        let (status, tokens) = redeem_code(&issuer, &code).await;
        assert_eq!(status, 200, "{tokens}");
        id_tokens.push(claims_of(tokens["id_token"].as_str().unwrap()));
        raw_id_token = tokens["id_token"].as_str().unwrap().to_owned();
        clock.advance(600);
    }
    assert_eq!(id_tokens[0]["auth_time"], NOW);
    assert_eq!(
        id_tokens[1]["auth_time"],
        NOW + 600,
        "the new authentication"
    );
    assert_eq!(id_tokens[1]["sid"], id_tokens[0]["sid"], "the same session");
    // An ID token of the session as id_token_hint signs out without asking.
    let out = get_text(
        &b,
        format!("{issuer}/connect/endsession?id_token_hint={raw_id_token}"),
    )
    .await;
    assert!(out.contains("You are signed out"), "{out}");
    let again = get_text(&b, url.as_str()).await;
    assert!(
        again.contains("<label for=\"username\">"),
        "signed out: {again}"
    );
    host.stop().await;
}

/// A used code presented again by another client is refused and revokes
/// nothing: only the code's own client ends its grant by replaying it.
/// Before, any client that got hold of a used code could end the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_replay_of_a_code_revokes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let code = net::user_code(&base, &browser(), "openid read").await;
    let (status, tokens) = redeem_code(&issuer, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, body) = token_endpoint(
        &issuer,
        Some(("demo.reports", "demo-reports-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(net::introspect(&base, access).await["active"], true);
    // The code's own client replaying it still ends the grant.
    let (status, _) = redeem_code(&issuer, &code).await;
    assert_eq!(status, 400);
    assert_eq!(net::introspect(&base, access).await["active"], false);
    host.stop().await;
}

/// Identity sessions never expired and were never purged: a stolen SSO
/// cookie, and the grants and tokens naming its session, lived forever. A
/// session lives `instance.session_lifetime_s` after its last sign-in; then
/// the cookie no longer signs in, refresh and introspection say it has
/// ended, and the background job ends it for the edges with a `sid` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_sessions_expire_after_their_lifetime() {
    use erpgate_identity::clock::{Clock as _, ManualClock};
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(ManualClock::at(1_800_000_000));
    let mut config = erpgate_identity::config::Config::demo();
    config.instance.session_lifetime_s = 3_600;
    config.instance.access_token_lifetime_s = 7_200;
    let host = net::start_host(dir.path(), config, clock.clone()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let b = browser();
    let (access, refresh) = net::user_tokens(&base, &b, "openid read offline_access").await;
    let refresh = refresh.unwrap();
    let silent = format!(
        "{issuer}/connect/authorize?client_id=demo.webapp&redirect_uri={REDIRECT}&response_type=code&scope=openid%20read&prompt=none"
    );
    let answer = |r: reqwest::Response| {
        let params = location_params(&r);
        (
            param(&params, "code").is_some(),
            param(&params, "error").map(str::to_owned),
        )
    };
    assert_eq!(answer(b.get(&silent).send().await.unwrap()), (true, None));
    assert_eq!(net::introspect(&base, &access).await["active"], true);

    clock.advance(3_601);
    assert_eq!(
        answer(b.get(&silent).send().await.unwrap()),
        (false, Some("login_required".to_owned())),
        "the SSO cookie no longer signs in"
    );
    let (status, body) = token_endpoint(
        &issuer,
        Some(WEBAPP),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        net::introspect(&base, &access).await["active"],
        false,
        "a token of an expired session"
    );

    let feed_before = host.state.identity.store.feed(0, 1000).await.unwrap().len();
    assert_eq!(
        host.state.identity.expire_sessions(clock.now(), 10).await,
        1
    );
    assert_eq!(
        host.state.identity.expire_sessions(clock.now(), 10).await,
        0
    );
    let feed = host.state.identity.store.feed(0, 1000).await.unwrap();
    assert_eq!(feed.len(), feed_before + 1, "one sid event for the edges");
    host.stop().await;
}

/// ERP.net issues refresh tokens to interactive confidential clients only;
/// public clients got 24-hour ones. A public app now gets none (its grant
/// loses `offline_access`) unless it opts in with `public_refresh_tokens`,
/// and then for 24 hours from the first issue; a confidential one still
/// gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_go_to_confidential_clients_and_opted_in_public_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = erpgate_identity::config::Config::demo();
    for app in &mut config.apps {
        if app.client_id == "demo.spa" {
            app.public_refresh_tokens = false;
        }
    }
    let clock = std::sync::Arc::new(erpgate_identity::clock::ManualClock::at(1_800_000_000));
    let host = net::start_host(dir.path(), config, clock.clone()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let spa_tokens = || {
        let (base, issuer) = (base.clone(), issuer.clone());
        async move {
            let url = authorize(
                &issuer,
                &[
                    ("client_id", "demo.spa"),
                    ("redirect_uri", "http://localhost:5173/callback"),
                    ("response_type", "code"),
                    ("scope", "openid read offline_access"),
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "S256"),
                ],
            );
            let done = sign_in(&browser(), &base, &url, ("alice", "alice-password")).await;
            let code = param(&location_params(&done), "code").unwrap().to_owned();
            token_endpoint(
                &issuer,
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "demo.spa"),
                    ("code", &code),
                    ("redirect_uri", "http://localhost:5173/callback"),
                    ("code_verifier", RIGHT_VERIFIER),
                ],
            )
            .await
            .1
        }
    };
    let store = host.state.identity.store.clone();
    let body = spa_tokens().await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "openid read");

    let mut app = store.app("demo.spa").await.unwrap().unwrap();
    app.public_refresh_tokens = true;
    assert!(store.update_app(&app).await.unwrap());
    let body = spa_tokens().await;
    assert!(body["refresh_token"].is_string(), "{body}");
    assert_eq!(body["scope"], "offline_access openid read");
    // A public client's refresh tokens live 24 hours from the first issue.
    let public_refresh = |token: String| {
        let issuer = issuer.clone();
        async move {
            token_endpoint(
                &issuer,
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "demo.spa"),
                    ("refresh_token", &token),
                ],
            )
            .await
        }
    };
    clock.advance(12 * 3600);
    let (status, rotated) =
        public_refresh(body["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 200, "{rotated}");
    clock.advance(12 * 3600 + 1);
    let (status, late) =
        public_refresh(rotated["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (status, late["error"].as_str()),
        (400, Some("invalid_grant")),
        "{late}"
    );

    let (_, refresh) = net::user_tokens(&base, &browser(), "openid read offline_access").await;
    assert!(refresh.is_some(), "a confidential client keeps them");
    host.stop().await;
}

/// Documented lifetimes with no test before (issue 17, item 6): a code
/// lives two minutes and must come back with its own `redirect_uri`; a
/// confidential app's refresh tokens end 30 days after the first issue,
/// however often they were rotated (a public app's 24 hours: above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_and_refresh_tokens_keep_their_documented_lifetimes() {
    use erpgate_identity::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(ManualClock::at(1_800_000_000));
    let mut config = erpgate_identity::config::Config::demo();
    // Sessions outlive the refresh tokens here, so only their own lifetime ends them.
    config.instance.session_lifetime_s = 90 * 86_400;
    let host = net::start_host(dir.path(), config, clock.clone()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let b = browser();
    let scope = "openid read offline_access";

    // A code 121 s old is expired; one sent with another redirect_uri is refused.
    let code = net::user_code(&base, &b, scope).await;
    clock.advance(erpgate_identity::signin::CODE_LIFETIME_S + 1);
    let (status, body) = redeem_code(&issuer, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let code = net::user_code(&base, &b, scope).await;
    let (status, body) = token_endpoint(
        &issuer,
        Some(WEBAPP),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/other"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // Confidential: rotated every 10 days, still dead 30 days after the first issue.
    let code = net::user_code(&base, &b, scope).await;
    let (_, tokens) = redeem_code(&issuer, &code).await;
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh_once = |token: String| {
        let issuer = issuer.clone();
        async move {
            token_endpoint(
                &issuer,
                Some(WEBAPP),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    for _ in 0..2 {
        clock.advance(10 * 86_400);
        let (status, body) = refresh_once(refresh.clone()).await;
        assert_eq!(status, 200, "{body}");
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
    }
    clock.advance(10 * 86_400 + 1);
    let (status, body) = refresh_once(refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    host.stop().await;
}

/// Documented behaviour with no test before (issue 17, item 6): the
/// user-type gate refuses a community user on an app that admits internal
/// users only (`access_denied` back to the client), and end session with
/// an ID token of the session and a registered logout URI returns there
/// with `state`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_type_gate_and_a_registered_logout_return() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let url = authorize(
        &issuer,
        &[
            ("client_id", "demo.webapp"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid read"),
            ("state", "s1"),
        ],
    );
    let refused = sign_in(&browser(), &base, &url, ("bob", "bob-password")).await;
    let params = location_params(&refused);
    assert_eq!(param(&params, "error"), Some("access_denied"), "{params:?}");
    assert_eq!(param(&params, "state"), Some("s1"));
    assert!(param(&params, "code").is_none());

    let b = browser();
    let done = sign_in(&b, &base, &url, ("alice", "alice-password")).await;
    let code = param(&location_params(&done), "code").unwrap().to_owned();
    let (_, tokens) = redeem_code(&issuer, &code).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let out = b
        .get(format!(
            "{issuer}/connect/endsession?id_token_hint={id_token}&post_logout_redirect_uri=http://localhost:3000/signout-callback-oidc&state=bye"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    assert_eq!(
        out.headers()["location"],
        "http://localhost:3000/signout-callback-oidc?state=bye"
    );
    host.stop().await;
}

/// RFC 9700 §4.14 family revocation, with a reuse interval (issue 17, item
/// 5): a client that lost the response to a refresh and retries with the
/// same token within `instance.refresh_reuse_interval_s` (30 s) gets a new
/// pair, and the pair it never received dies. Presenting a token whose
/// successor was used, or past the interval, still revokes the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_response_may_be_retried_within_the_reuse_interval() {
    use erpgate_identity::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(ManualClock::at(1_800_000_000));
    let config = erpgate_identity::config::Config::demo();
    assert_eq!(config.instance.refresh_reuse_interval_s, 30);
    let host = net::start_host(dir.path(), config, clock.clone()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let refresh = |token: String| {
        let issuer = issuer.clone();
        async move {
            let (status, body) = token_endpoint(
                &issuer,
                Some(WEBAPP),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await;
            (
                status,
                body["refresh_token"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let (_, first) = net::user_tokens(&base, &browser(), "openid read offline_access").await;
    let first = first.unwrap();
    let (_, lost) = refresh(first.clone()).await;
    clock.advance(10);
    let (status, retried) = refresh(first.clone()).await;
    assert_eq!(status, 200, "the retry within 30 s succeeds");
    assert_eq!(refresh(lost).await.0, 400, "the pair never received died");
    assert_eq!(
        refresh(retried).await.0,
        400,
        "and presenting it revoked the grant, as any replay does"
    );

    // Past the interval, a replay revokes the grant even with an unused successor.
    let (_, first) = net::user_tokens(&base, &browser(), "openid read offline_access").await;
    let first = first.unwrap();
    let (_, next) = refresh(first.clone()).await;
    clock.advance(31);
    assert_eq!(refresh(first).await.0, 400);
    assert_eq!(refresh(next).await.0, 400, "the family is revoked");
    host.stop().await;
}

/// The hybrid flow (`code id_token`) with `response_mode=form_post`, as
/// ERP.net's documented clients use it: the `openidconnect` crate builds
/// the request and verifies the ID token the form carries (signature,
/// nonce, audience), and its `c_hash` against the code with the crate's own
/// hash; `s_hash` is checked against the state. An ID token is never put in
/// a query string, and a hybrid request without a nonce is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_id_token_by_form_post_carries_hashes_a_real_client_verifies() {
    use openidconnect::core::{CoreIdToken, CoreResponseType};
    use openidconnect::{AuthorizationCodeHash, Nonce};
    use std::str::FromStr as _;

    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let issuer = host.state.identity.issuer.clone();
    let (client, http) = webapp_client(&issuer).await;
    let (challenge, pkce) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::Hybrid(vec![CoreResponseType::Code, CoreResponseType::IdToken]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("read".into()))
        .add_extra_param("response_mode", "form_post")
        .set_pkce_challenge(challenge)
        .url();
    let posted = sign_in(&browser(), &base, url.as_str(), ("alice", "alice-password")).await;
    assert_eq!(posted.status(), 200, "form_post answers with the form");
    let page = posted.text().await.unwrap();
    assert!(page.contains(&format!("action=\"{REDIRECT}\"")), "{page}");
    let code = field(&page, "code");
    assert_eq!(field(&page, "state"), *state.secret());
    assert_eq!(field(&page, "iss"), issuer, "RFC 9207");

    let id_token = CoreIdToken::from_str(&field(&page, "id_token")).unwrap();
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), "alice");
    let expected = AuthorizationCodeHash::from_code(
        &AuthorizationCode::new(code.clone()),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.code_hash(), Some(&expected), "c_hash");
    let s_hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(state.secret().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    };
    assert_eq!(claims_of(&id_token.to_string())["s_hash"], s_hash.as_str());

    // The code redeems as usual, with the PKCE verifier.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(pkce)
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(claims_of(tokens.access_token().secret())["sub"], "alice");

    // Refusals go back to the client, in the mode it can read.
    let refused = |pairs: Vec<(&'static str, &'static str)>| {
        let url = authorize(&issuer, &pairs);
        let base = base.clone();
        async move { sign_in(&browser(), &base, &url, ("alice", "alice-password")).await }
    };
    let common = [
        ("client_id", "demo.webapp"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid read"),
        ("state", "s2"),
    ];
    let mut in_query = common.to_vec();
    in_query.extend([
        ("response_type", "code id_token"),
        ("response_mode", "query"),
        ("nonce", "n2"),
    ]);
    let params = location_params(&refused(in_query).await);
    assert_eq!(
        param(&params, "error"),
        Some("invalid_request"),
        "{params:?}"
    );
    assert!(param(&params, "id_token").is_none());
    let mut no_nonce = common.to_vec();
    no_nonce.push(("response_type", "code id_token"));
    let answer = refused(no_nonce).await;
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains('#'),
        "hybrid answers in the fragment: {location}"
    );
    let params = location_params(&answer);
    assert_eq!(
        param(&params, "error"),
        Some("invalid_request"),
        "{params:?}"
    );
    assert_eq!(param(&params, "state"), Some("s2"));
    host.stop().await;
}

/// Authorize refuses what the app's record does not allow: a scope outside
/// its `Scope` goes back to the client as `invalid_scope` (with `state`),
/// and a disabled app gets an error page, never a redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_refuses_scopes_the_app_lacks_and_disabled_apps() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let issuer = host.state.identity.issuer.clone();
    let request = |scope: &'static str| {
        authorize(
            &issuer,
            &[
                ("client_id", "demo.webapp"),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", scope),
                ("state", "s3"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
    };
    let r = browser().get(request("openid admin")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let params = location_params(&r);
    assert_eq!(param(&params, "error"), Some("invalid_scope"), "{params:?}");
    assert_eq!(param(&params, "state"), Some("s3"));
    let r = browser().get(request("openid Read")).send().await.unwrap();
    assert_eq!(
        param(&location_params(&r), "error"),
        Some("invalid_scope"),
        "scope names are case-sensitive"
    );

    let store = host.state.identity.store.clone();
    assert!(store.set_app_enabled("demo.webapp", false).await.unwrap());
    let r = browser().get(request("openid read")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none(), "never a redirect");
    host.stop().await;
}

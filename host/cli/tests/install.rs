//! ERP.net installation links end to end: an administrator follows an
//! install link in headless Chromium (signing in when asked), the app it
//! installs gets a client-credentials token and calls the emulated API
//! through the gateway running the real filter, and the uninstall link ends
//! that at the edge within a second. A receiving server stands in for the
//! app's install handler; Node's crypto verifies each lifecycle event.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::Value;
use tokio::sync::mpsc;

use net::{node, send, up_stack, within_a_second};

mod net;

/// The app's install handler: every envelope it receives, with when.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(Instant, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/lifecycle",
        post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = tx.send((Instant::now(), envelope));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/lifecycle"), rx)
}

/// The next envelope, verified by Node as an app would: its payload.
async fn verified(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Value)>,
    dir: &Path,
    marketplace: &str,
) -> (Instant, Value) {
    let (at, envelope) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a lifecycle event within 5 s")
        .unwrap();
    let file = dir.join("envelope.json");
    std::fs::write(&file, envelope.to_string()).unwrap();
    let checked = node(vec![
        "verify-lifecycle.mjs".into(),
        file.display().to_string(),
        marketplace.into(),
    ])
    .await;
    assert_eq!(checked["valid"], true, "{envelope}");
    assert_eq!(checked["forgeryRefused"], true);
    (at, checked["payload"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_app_reaches_the_api_until_its_uninstall() {
    let dir = tempfile::tempdir().unwrap();
    let stack = up_stack(dir.path(), None).await;
    let identity = stack.host.state.identity.public_url.clone();
    let marketplace = format!("{identity}/.well-known/marketplace.json");
    let api = format!(
        "http://{}/api/domain/odata/Crm_Customers",
        stack.gateway.addr
    );
    let (redirect, mut events) = receiver().await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let session_file = dir.path().join("browser-session.json");
    let client_id = "com.example.installed";

    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("applicationUri", client_id),
            ("applicationName", "Installed Example"),
            ("clientType", "Confidential"),
            ("requestSecret", "true"),
            ("serviceAccess", "clientCredentials"),
            ("impersonate", "internal"),
            ("scope", "read"),
            ("redirectUri", redirect.as_str()),
        ])
        .finish();
    let seen = node(vec![
        "install.mjs".into(),
        "install".into(),
        format!("{identity}/manage/apps/install?{query}"),
        session_file.display().to_string(),
        shots.display().to_string(),
    ])
    .await;
    assert_eq!(
        seen["signedIn"], true,
        "signed out, the link asked for a sign-in"
    );
    let grant = seen["grant"].as_str().unwrap();
    assert!(
        grant.contains(client_id) && grant.contains("SYSTEM_APPLICATION_USER"),
        "{grant}"
    );
    assert!(seen["scopes"].to_string().contains("(read)"), "{seen}");
    let secret = seen["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.len() == 24 && secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "{secret}"
    );
    assert!(
        seen["delivery"].as_str().unwrap().contains("HTTP 200"),
        "{seen}"
    );

    // The install handler got the secret, signed by the published key.
    let (_, payload) = verified(&mut events, dir.path(), &marketplace).await;
    assert_eq!(payload["event"], "installed");
    assert_eq!(payload["applicationUri"], client_id);
    assert_eq!(payload["clientSecret"], secret.as_str());
    assert_eq!(payload["clientType"], "Confidential");

    // With nothing else done: a client-credentials token, and the API
    // through the gateway.
    let token_response = |secret: String| {
        let identity = identity.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{identity}/id/connect/token"))
                .basic_auth(client_id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "read")])
                .send()
                .await
                .unwrap()
        }
    };
    let r = token_response(secret.clone()).await;
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let (status, body) = send(&api, "GET", &[("authorization", bearer.as_bytes())]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(&api, "POST", &[("authorization", bearer.as_bytes())]).await;
    assert_eq!(status, 403, "only the scope the link granted");

    // While the uninstall runs, a client keeps calling with the token: when
    // was it first refused (four answers in a row, every VM caught up)?
    let watcher = {
        let (api, bearer) = (api.clone(), bearer.clone());
        tokio::spawn(async move {
            let mut first_of_run = None;
            let mut in_a_row = 0;
            while in_a_row < 4 {
                let (status, _) = send(&api, "GET", &[("authorization", bearer.as_bytes())]).await;
                if status == 401 {
                    first_of_run.get_or_insert_with(Instant::now);
                    in_a_row += 1;
                } else {
                    assert_eq!(status, 200);
                    (first_of_run, in_a_row) = (None, 0);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            first_of_run.unwrap()
        })
    };

    // The uninstall link, in the same browser session.
    let seen = node(vec![
        "install.mjs".into(),
        "uninstall".into(),
        format!("{identity}/manage/apps/uninstall?applicationUri={client_id}"),
        session_file.display().to_string(),
        shots.display().to_string(),
    ])
    .await;
    assert!(
        seen["delivery"].as_str().unwrap().contains("HTTP 200"),
        "{seen}"
    );
    let (uninstalled_at, payload) = verified(&mut events, dir.path(), &marketplace).await;
    assert_eq!(payload["event"], "uninstalled");
    assert!(payload.get("clientSecret").is_none());

    // Its token, valid until `exp`, is refused at the edge within a second
    // of the uninstall (the app hears of it after the feed event is
    // written); the secret no longer gets a token.
    let refused_at = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("refused at all")
        .unwrap();
    let after = refused_at.saturating_duration_since(uninstalled_at);
    assert!(
        after < Duration::from_secs(1),
        "refused {after:?} after the uninstall"
    );
    within_a_second(&api, &[("authorization", bearer.as_bytes())], 401, 401).await;
    assert_eq!(token_response(secret).await.status(), 401);
    stack.gateway.stop().await;
    stack.host.stop().await;
}

/// Signed out, a link asks for a sign-in and returns to itself; a
/// signed-in user who is not an administrator is refused; a forged POST
/// installs nothing; a return address off the site is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_for_administrators_and_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = format!("http://{}", host.addr);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let link = "/manage/apps/install?applicationUri=x&clientType=Public&impersonate=all";
    let r = no_redirects
        .get(format!("{base}{link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/id/account/login?return="), "{to}");

    // A POST without the session and the form's CSRF token installs nothing.
    let r = no_redirects
        .post(format!("{base}/manage/apps/install"))
        .form(&[("applicationUri", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        host.state
            .identity
            .store
            .app("forged")
            .await
            .unwrap()
            .is_none()
    );

    // Sign in as alice (not an administrator) through the page the link
    // sent us to: back at the link, refused.
    let page = no_redirects
        .get(format!("{base}{to}"))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    let field = |name: &str| {
        let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        html[at..].split('"').next().unwrap().to_owned()
    };
    let r = no_redirects
        .post(format!("{base}/id/account/login"))
        .form(&[
            ("request", field("request")),
            ("csrf", field("csrf")),
            ("username", "alice".into()),
            ("password", "alice-password".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], link, "back at the link");
    let r = no_redirects
        .get(format!("{base}{link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A link that leaves the site after sign-in is not followed.
    let r = no_redirects
        .get(format!(
            "{base}/id/account/login?return=https://evil.example/"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(!html.contains("evil.example"));

    host.stop().await;
}

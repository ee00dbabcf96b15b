//! The emulated ERP API over real HTTP on 127.0.0.1: sessions open on first
//! use, license slots and reserved seats, sliding and absolute timeouts with
//! an injected clock, endsession freeing the slot, refresh keeping the
//! session, `/profile/me`, legacy Basic and ErpLogin, and the OData basics.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use erpgate_identity::clock::ManualClock;
use erpgate_identity::config::Config;
use serde_json::{Value, json};

mod net;

use net::{WEBAPP, bearer, browser, send, token_endpoint, user_tokens};

const NOW: u64 = 1_766_505_200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_licenses_and_the_odata_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo();
    // Three slots, one of them admin's: two shared.
    config.instance.license_slots = 3;
    config.instance.reserved_accounts = vec!["admin".into()];
    let clock = Arc::new(ManualClock::at(NOW));
    let host = net::start_host(dir.path(), config, clock.clone()).await;
    let base = host.state.identity.public_url.clone();
    let operator = host.admin_url();
    let customers = format!("{base}/api/domain/odata/Crm_Customers");

    // Issuing a token opens no session; the first call does.
    let service = net::service_token(&base, "read update").await;
    assert_eq!(
        net::sessions_table(&operator).await["used"],
        0,
        "issuance opens nothing"
    );
    let (status, body) = bearer(&customers, "GET", &service).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    let t = net::sessions_table(&operator).await;
    assert_eq!(t["used"], 1);
    assert_eq!(t["sessions"][0]["origin"], "service");
    let first_id = t["sessions"][0]["id"].as_str().unwrap().to_owned();
    bearer(&customers, "GET", &service).await;
    assert_eq!(
        net::sessions_table(&operator).await["used"],
        1,
        "the same token keeps its session"
    );

    // OData basics: $filter, $top, create, read, merge, delete; scopes apply.
    let (_, active) = bearer(
        &format!("{customers}?$filter=Active%20eq%20true&$top=1"),
        "GET",
        &service,
    )
    .await;
    assert_eq!(active["value"].as_array().unwrap().len(), 1);
    assert_eq!(active["value"][0]["Active"], true);
    let created: Value = reqwest::Client::new()
        .post(&customers)
        .bearer_auth(&service)
        .json(&json!({"Number": "C-0004", "Name": "Delta Mills", "Active": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["Id"].as_str().unwrap().to_owned();
    let one = format!("{customers}({id})");
    let patched = reqwest::Client::new()
        .patch(&one)
        .bearer_auth(&service)
        .json(&json!({"CreditLimit": 900}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let (_, got) = bearer(&one, "GET", &service).await;
    assert_eq!(
        (got["Name"].as_str(), got["CreditLimit"].as_u64()),
        (Some("Delta Mills"), Some(900))
    );
    assert_eq!(bearer(&one, "DELETE", &service).await.0, 204);
    assert_eq!(bearer(&one, "GET", &service).await.0, 404);
    let (status, bad) = bearer(
        &format!("{customers}?$filter=Name%20gt%20'a'"),
        "GET",
        &service,
    )
    .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("ODataError")));
    let read_only = net::service_token(&base, "read").await;
    let (status, denied) = bearer(&customers, "POST", &read_only).await;
    assert_eq!(
        (status, denied["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    // That call was refused before any session: still one session open.
    assert_eq!(net::sessions_table(&operator).await["used"], 1);

    // A PAT takes the second shared slot; a third identity finds the table full.
    let pat = net::mint_pat(&operator, "admin").await;
    assert_eq!(
        send(&customers, "GET", &[("x-api-key", pat.as_bytes())])
            .await
            .0,
        200
    );
    let (status, full) = bearer(&customers, "GET", &read_only).await;
    assert_eq!(status, 500);
    assert_eq!(full["code"], "MaximumLicenseCountExceeded");
    // A reserved account still gets in.
    let admin_pat = net::mint(
        &operator,
        "admin",
        json!({"client_id":"demo.reports","kind":"pat","user":"admin","scope":"read","expires_in_days":1}),
    )
    .await;
    assert_eq!(
        send(&customers, "GET", &[("x-api-key", admin_pat.as_bytes())])
            .await
            .0,
        200
    );
    assert_eq!(net::sessions_table(&operator).await["used"], 3);

    // Sliding timeout: 20 idle minutes close a session; the still-valid
    // token reopens one (a new session) when a slot is free.
    clock.advance(20 * 60);
    assert_eq!(
        net::sessions_table(&operator).await["used"],
        0,
        "all idle for 20 minutes"
    );
    assert_eq!(
        bearer(&customers, "GET", &read_only).await.0,
        200,
        "a slot is free now"
    );
    let (status, _) = bearer(&customers, "GET", &service).await;
    assert_eq!(status, 200);
    let t = net::sessions_table(&operator).await;
    assert!(
        t["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != first_id.as_str())
    );

    // Absolute lifetime: a SAT's session closes after an hour however busy.
    let sat = net::mint(
        &operator,
        "admin",
        json!({"client_id":"demo.reports","kind":"sat","scope":"read","expires_in_days":2}),
    )
    .await;
    // Free the shared slots first.
    for s in net::sessions_table(&operator).await["sessions"]
        .as_array()
        .unwrap()
    {
        let path = format!("/admin/sessions/{}", s["id"].as_str().unwrap());
        net::admin_call(&operator, "admin", "DELETE", &path, None).await;
    }
    assert_eq!(
        send(&customers, "GET", &[("x-api-key", sat.as_bytes())])
            .await
            .0,
        200
    );
    let sat_session = net::sessions_table(&operator).await["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..6 {
        clock.advance(10 * 60);
        assert_eq!(
            send(&customers, "GET", &[("x-api-key", sat.as_bytes())])
                .await
                .0,
            200
        );
    }
    let t = net::sessions_table(&operator).await;
    assert_eq!(t["used"], 1);
    assert_ne!(
        t["sessions"][0]["id"],
        sat_session.as_str(),
        "reopened after an hour"
    );

    // /profile/me: user tokens and PATs only, never cached.
    let me = format!("{base}/profile/me");
    let (status, body) = send(&me, "GET", &[("x-api-key", pat.as_bytes())]).await;
    assert_eq!((status, body["Login"].as_str()), (200, Some("alice")));
    assert_eq!(
        send(&me, "GET", &[("x-api-key", sat.as_bytes())]).await.0,
        403,
        "SATs are refused"
    );
    let fresh_service = net::service_token(&base, "read").await;
    assert_eq!(
        bearer(&me, "GET", &fresh_service).await.0,
        403,
        "service tokens are refused"
    );
    let r = reqwest::Client::new()
        .get(&me)
        .header("x-api-key", &pat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_sessions_follow_sid_refresh_and_endsession() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let operator = host.admin_url();
    let customers = format!("{base}/api/domain/odata/Crm_Customers");
    let b = browser();
    let (access, refresh) = user_tokens(&base, &b, "openid read offline_access").await;
    assert_eq!(net::sessions_table(&operator).await["used"], 0);
    assert_eq!(bearer(&customers, "GET", &access).await.0, 200);
    let t = net::sessions_table(&operator).await;
    assert_eq!(
        (t["used"].as_u64(), t["sessions"][0]["origin"].as_str()),
        (Some(1), Some("user"))
    );
    let session = t["sessions"][0]["id"].clone();

    // A refresh keeps the sid, so the same session.
    let (_, refreshed) = token_endpoint(
        &format!("{base}/id"),
        Some(WEBAPP),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh.unwrap()),
        ],
    )
    .await;
    let newer = refreshed["access_token"].as_str().unwrap();
    assert_eq!(bearer(&customers, "GET", newer).await.0, 200);
    let t = net::sessions_table(&operator).await;
    assert_eq!(
        (t["used"].as_u64(), &t["sessions"][0]["id"]),
        (Some(1), &session)
    );

    // endsession without an ID token of the session asks first: a link on
    // another site signs nobody out (logout CSRF; before, it did).
    let page = b
        .get(format!("{base}/id/connect/endsession"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign out of ERP.net?"), "{page}");
    assert_eq!(
        net::sessions_table(&operator).await["used"],
        1,
        "still signed in"
    );
    let forged = b
        .get(format!("{base}/id/connect/endsession?csrf=guessed"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200);
    assert_eq!(
        net::sessions_table(&operator).await["used"],
        1,
        "a wrong csrf is no confirmation"
    );
    // Confirmed (each page carries a fresh token), it ends the ERP session
    // and frees the slot at once.
    let page = forged.text().await.unwrap();
    let csrf = net::field(&page, "csrf");
    let out = b
        .get(format!("{base}/id/connect/endsession?csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert!(out.text().await.unwrap().contains("You are signed out"));
    assert_eq!(net::sessions_table(&operator).await["used"], 0);
    // Tokens of the ended session are no longer active anywhere the host
    // answers (before, introspection and userinfo still took them).
    assert_eq!(net::introspect(&base, &access).await["active"], false);
    let (status, _) = bearer(&format!("{base}/id/connect/userinfo"), "GET", &access).await;
    assert_eq!(status, 401);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_basic_and_erplogin() {
    let dir = tempfile::tempdir().unwrap();
    let host = net::start_demo_host(dir.path()).await;
    let base = host.state.identity.public_url.clone();
    let operator = host.admin_url();
    let customers = format!("{base}/api/domain/odata/Crm_Customers");
    let basic = |user: &str, pass: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };

    // Basic works only for an app that allows it, naming the app.
    let ok = basic("demo.bi\\alice", "alice-password");
    assert_eq!(
        send(&customers, "GET", &[("authorization", ok.as_bytes())])
            .await
            .0,
        200
    );
    let (status, body) = send(
        &customers,
        "GET",
        &[(
            "authorization",
            basic("demo.webapp\\alice", "alice-password").as_bytes(),
        )],
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not configured to allow Basic")
    );
    // One rule for every door: a community user never reaches the API as
    // itself, with the right password too (before, bob got a 200 here), and
    // neither does a user type the app does not admit.
    let (status, body) = send(
        &customers,
        "GET",
        &[(
            "authorization",
            basic("demo.bi\\bob", "bob-password").as_bytes(),
        )],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not allowed to use this application")
    );
    let wrong = basic("demo.bi\\alice", "nope");
    assert_eq!(
        send(&customers, "GET", &[("authorization", wrong.as_bytes())])
            .await
            .0,
        401
    );
    let header_named = basic("alice", "alice-password");
    assert_eq!(
        send(
            &customers,
            "GET",
            &[
                ("authorization", header_named.as_bytes()),
                ("x-erp-application", b"demo.bi")
            ]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        net::sessions_table(&operator).await["used"],
        1,
        "one Basic session for alice on demo.bi"
    );

    // ErpLogin: logging in again reuses the session; logout keeps it.
    let login = |pass: &'static str| {
        let base = base.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/domain/login"))
                .json(&json!({"user": "alice", "pass": pass, "app": "demo.bi", "lang": "en"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = login("alice-password").await;
    assert_eq!(status, 200);
    let (_, second) = login("alice-password").await;
    assert_eq!(
        first["authorization"], second["authorization"],
        "the same session"
    );
    assert!(
        first["authorization"]
            .as_str()
            .unwrap()
            .starts_with("ErpSession ")
    );
    assert_eq!(login("wrong").await.0, 401);
    let erp = first["authorization"].as_str().unwrap().to_owned();
    assert_eq!(
        send(&customers, "GET", &[("authorization", erp.as_bytes())])
            .await
            .0,
        200
    );
    let out = reqwest::Client::new()
        .post(format!("{base}/api/domain/logout"))
        .header("authorization", &erp)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(
        send(&customers, "GET", &[("authorization", erp.as_bytes())])
            .await
            .0,
        200,
        "since v27.1 logout keeps the session"
    );
    assert_eq!(
        net::sessions_table(&operator).await["used"],
        2,
        "Basic and ErpLogin each hold a slot"
    );
    assert_eq!(
        send(&customers, "GET", &[("authorization", b"ErpSession 0123")])
            .await
            .0,
        401
    );

    // `erpgate sessions list|end` against the running host.
    let cli = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_erpgate"))
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let args = |rest: &[&str]| {
        let mut v = vec![
            "sessions".to_owned(),
            "--url".into(),
            operator.clone(),
            "--admin-token".into(),
            "admin".into(),
        ];
        v.extend(rest.iter().map(|s| (*s).to_owned()));
        v
    };
    let listed = cli(args(&["list"])).await.unwrap();
    assert!(
        listed.starts_with("2 of 10 license slots in use"),
        "{listed}"
    );
    assert!(
        listed.contains("erp_login") && listed.contains("basic"),
        "{listed}"
    );
    let id = erp.trim_start_matches("ErpSession ").to_owned();
    assert!(
        cli(args(&["end", &id]))
            .await
            .unwrap()
            .contains("session ended")
    );
    assert_eq!(net::sessions_table(&operator).await["used"], 1);
    assert_eq!(
        send(&customers, "GET", &[("authorization", erp.as_bytes())])
            .await
            .0,
        401,
        "an ended ErpSession is refused"
    );
    host.stop().await;
}

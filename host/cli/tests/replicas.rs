//! Two host replicas on one PostgreSQL database, over real HTTP on
//! loopback: a code issued by one is redeemed at the other exactly once, a
//! revocation at one holds at the other at once, the license count holds
//! across both, and a key rotated at one verifies at the other.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod net;

use std::time::{Duration, Instant};

use base64::Engine as _;
use erpgate_identity::config::Config;
use net::{
    REDIRECT, admin_call, bearer, browser, field, get_text, location_params, param, post_form,
    send, service_token, sessions_table, start_replica, submit_login, token_endpoint,
};
use serde_json::{Value, json};

const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9a_verifier_of_at_least_43_characters";

fn challenge() -> String {
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER))
}

/// The URL clients know the instance by, in front of both replicas: one
/// issuer for both.
const PUBLIC: &str = "http://erp.replicas.test";

/// Two replicas started together (their migrations and seeds race) on a
/// fresh database, and the loopback URL of each.
async fn two_replicas(
    mut config: Config,
) -> Option<(erpgate_cli::Running, erpgate_cli::Running, String, String)> {
    let url = net::postgres_database().await?;
    config.server.public_url = Some(PUBLIC.into());
    let (a, b) = tokio::join!(
        start_replica(&url, config.clone()),
        start_replica(&url, config)
    );
    let (base_a, base_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    assert_eq!(a.state.identity.issuer, b.state.identity.issuer);
    Some((a, b, base_a, base_b))
}

fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_from_one_replica_is_redeemed_once_across_both() {
    let Some((a, b, base_a, base_b)) = two_replicas(Config::demo()).await else {
        return;
    };

    // One sign-in whose pages alternate between the replicas, as behind a
    // load balancer without sticky sessions: authorize at A, log in at B,
    // consent at A.
    let browser = browser();
    let authorize = format!(
        "{base_a}/id/connect/authorize?client_id=demo.webapp&response_type=code&scope=openid%20read%20offline_access&redirect_uri={}&code_challenge={}&code_challenge_method=S256&state=s1",
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        challenge()
    );
    let login = get_text(&browser, &authorize).await;
    let consent = submit_login(&browser, &base_b, &login, ("alice", "alice-password")).await;
    assert_eq!(consent.status(), 200, "B continues A's sign-in");
    let consent = consent.text().await.unwrap();
    assert!(consent.contains("Allow access"), "{consent}");
    let done = post_form(
        &browser,
        &format!("{base_a}/id/connect/consent"),
        &[
            ("request", &field(&consent, "request")),
            ("csrf", &field(&consent, "csrf")),
            ("decision", "allow"),
            ("remember", "yes"),
        ],
    )
    .await;
    assert_eq!(done.status(), 302);
    let code = param(&location_params(&done), "code").unwrap().to_owned();

    // 50 concurrent redemptions, split across both replicas: one succeeds.
    let tries: Vec<_> = (0..50)
        .map(|i| {
            let issuer = format!("{}/id", if i % 2 == 0 { &base_a } else { &base_b });
            let code = code.clone();
            tokio::spawn(async move {
                token_endpoint(
                    &issuer,
                    Some(net::WEBAPP),
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", VERIFIER),
                    ],
                )
                .await
            })
        })
        .collect();
    let mut ok = Vec::new();
    for t in tries {
        match t.await.unwrap() {
            (200, body) => ok.push(body),
            (status, body) => assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "{body}"
            ),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one of 50 redemptions succeeds");

    // The replays revoked the grant (RFC 9700 §4.5), also while the winner
    // was still issuing: its tokens are dead at both replicas.
    let access = ok[0]["access_token"].as_str().unwrap();
    for base in [&base_a, &base_b] {
        assert_eq!(net::introspect(base, access).await["active"], false);
    }
    let refresh = ok[0]["refresh_token"].as_str().unwrap();
    for base in [&base_a, &base_b] {
        let (status, body) = token_endpoint(
            &format!("{base}/id"),
            Some(net::WEBAPP),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }

    // SSO: the session cookie A set is honoured by B (one shared cookie key).
    let again = browser
        .get(authorize.replace(&base_a, &base_b))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 302, "signed in at B without a login page");
    assert!(param(&location_params(&again), "code").is_some());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pat_revoked_at_one_replica_is_inactive_at_the_other_at_once() {
    let Some((a, b, base_a, base_b)) = two_replicas(Config::demo()).await else {
        return;
    };
    let pat_request = json!({"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1});
    let (_, issued) = admin_call(
        &a.admin_url(),
        "admin",
        "POST",
        "/admin/reference-tokens",
        Some(pat_request),
    )
    .await;
    let pat = issued["token"].as_str().unwrap();
    let id = issued["record"]["id"].as_str().unwrap();
    assert_eq!(net::introspect(&base_b, pat).await["active"], true);

    let feed = |base: String| async move {
        reqwest::Client::new()
            .get(format!("{base}/id/connect/revocation/feed?cursor=0"))
            .basic_auth(net::EDGE.0, Some(net::EDGE.1))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = feed(base_b.clone()).await;

    let path = format!("/admin/reference-tokens/{id}");
    let (status, _) = admin_call(&a.admin_url(), "admin", "DELETE", &path, None).await;
    assert!((200..300).contains(&status), "{status}");
    assert_eq!(
        net::introspect(&base_b, pat).await,
        json!({"active": false}),
        "inactive at B with no wait"
    );
    // Both replicas serve one feed: the same events under the same cursor.
    let (fa, fb) = (feed(base_a.clone()).await, feed(base_b.clone()).await);
    assert_eq!(fa, fb);
    assert_ne!(fb, before, "the revocation is in the feed");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_license_count_holds_across_replicas_under_concurrent_first_use() {
    let mut config = Config::demo();
    // Four slots, one of them admin's: three shared.
    config.instance.license_slots = 4;
    config.instance.reserved_accounts = vec!["admin".into()];
    let Some((a, b, base_a, base_b)) = two_replicas(config).await else {
        return;
    };
    // Twelve service identities (one session each: keyed by jti), first
    // used at the same moment, half at each replica.
    let mut tokens = Vec::new();
    for _ in 0..12 {
        tokens.push(service_token(&base_a, "read").await);
    }
    let calls: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let base = if i % 2 == 0 { &base_a } else { &base_b };
            let url = format!("{base}/api/domain/odata/Crm_Customers");
            tokio::spawn(async move { bearer(&url, "GET", &token).await })
        })
        .collect();
    let mut opened = 0;
    for c in calls {
        match c.await.unwrap() {
            (200, _) => opened += 1,
            (status, body) => {
                assert_eq!(status, 500, "{body}");
                assert_eq!(body["code"], "MaximumLicenseCountExceeded");
            }
        }
    }
    assert_eq!(opened, 3, "three shared slots across both replicas");
    for replica in [&a, &b] {
        let table = sessions_table(&replica.admin_url()).await;
        assert_eq!(table["used"], 3, "{table}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rotated_at_one_replica_verifies_at_the_other() {
    let Some((a, b, base_a, base_b)) = two_replicas(Config::demo()).await else {
        return;
    };
    let before = service_token(&base_a, "read").await;
    let (_, rotated) =
        admin_call(&a.admin_url(), "admin", "POST", "/admin/keys/rotate", None).await;
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid, kid_of(&before));
    let started = Instant::now();

    // B publishes it within one reload interval (plus a tick)…
    let jwks_b = format!("{base_b}/id/.well-known/openid-configuration/jwks");
    loop {
        let (_, jwks) = send(&jwks_b, "GET", &[]).await;
        if jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str())
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(erpgate_identity::keys::RELOAD_INTERVAL_S + 2),
            "B did not publish the new key in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // …before A signs with it.
    let early = service_token(&base_a, "read").await;
    assert_eq!(kid_of(&early), kid_of(&before), "not signing yet");
    let token = loop {
        let t = service_token(&base_a, "read").await;
        if kid_of(&t) == kid {
            break t;
        }
        assert!(
            started.elapsed()
                < Duration::from_secs(erpgate_identity::keys::PUBLISH_BEFORE_SIGNING_S + 3),
            "A never signed with the new key"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // A token of the new key is good at B: its API accepts it and its
    // introspection says active.
    let (status, body) = bearer(
        &format!("{base_b}/api/domain/odata/Crm_Customers"),
        "GET",
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(net::introspect(&base_b, &token).await["active"], true);
    // Tokens of the old key still verify at both.
    assert_eq!(net::introspect(&base_b, &before).await["active"], true);
    a.stop().await;
    b.stop().await;
}

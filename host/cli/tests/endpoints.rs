//! Endpoint tests through `oneshot`: every behaviour of part 1 and its error paths.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use erpgate::cache::TokenHash;
use erpgate_store::Store as _;
use serde_json::json;
use tower::ServiceExt as _;

#[tokio::test]
async fn discovery_lists_what_is_served() {
    let h = host().await;
    let d = h.get("/id/.well-known/openid-configuration").await.json();
    assert_eq!(d["issuer"], "https://demo.my.erp.net/id");
    assert_eq!(
        d["jwks_uri"],
        "https://demo.my.erp.net/id/.well-known/openid-configuration/jwks"
    );
    assert_eq!(
        d["token_endpoint"],
        "https://demo.my.erp.net/id/connect/token"
    );
    assert_eq!(
        d["introspection_endpoint"],
        "https://demo.my.erp.net/id/connect/introspect"
    );
    assert_eq!(
        d["revocation_endpoint"],
        "https://demo.my.erp.net/id/connect/revocation"
    );
    assert_eq!(
        d["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        d["response_types_supported"],
        json!(["code", "code id_token"])
    );
    assert_eq!(
        d["scopes_supported"],
        json!(["openid", "profile", "offline_access", "read", "update"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    // Every advertised endpoint answers (not 404).
    for key in [
        "jwks_uri",
        "authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "erpgate_revocation_feed_endpoint",
    ] {
        let path = d[key].as_str().unwrap().trim_start_matches(BASE);
        let r = h.get(path).await;
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{key} {path}");
    }
    for path in [
        "/id/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/id",
    ] {
        assert_eq!(
            h.get(path).await.json()["issuer"],
            "https://demo.my.erp.net/id",
            "{path}"
        );
    }
    let jwks = h
        .get("/id/.well-known/openid-configuration/jwks")
        .await
        .json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = keys[0]["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 32);
    assert!(
        kid.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    );
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(keys[0].get("d").is_none(), "no private material");
}

#[tokio::test]
async fn client_credentials_token_has_erpnet_shape() {
    let h = host().await;
    let r = h.form("/id/connect/token", None, "grant_type=client_credentials&client_id=demo.service&client_secret=demo-service-secret&scope=read+update").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read update");
    assert!(body.get("refresh_token").is_none());
    let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"].as_str().unwrap().len(), 32);
    assert_eq!(claims["iss"], "https://demo.my.erp.net/id");
    assert_eq!(
        claims["aud"],
        json!([
            "DomainAPI",
            "TableAPI",
            "OLAP",
            "AppServer",
            "https://demo.my.erp.net/id/resources"
        ])
    );
    assert_eq!(claims["scope"], json!(["read", "update"]));
    assert_eq!(claims["client_id"], "demo.service");
    assert_eq!(claims["client_system_user"], "SYSTEM_APPLICATION_USER");
    assert_eq!(claims["client_system_user_type"], "ApplicationUserNoLogin");
    assert_eq!(claims["client_db"], "demo");
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["nbf"], NOW);
    assert_eq!(claims["exp"], NOW + 3600);
    let jti = claims["jti"].as_str().unwrap();
    assert!(
        jti.len() == 32
            && jti
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
    );
    assert!(claims.get("sub").is_none() && claims.get("sid").is_none());
}

#[tokio::test]
async fn client_credentials_scopes() {
    let h = host().await;
    // No scope: every scope of the app.
    let r = h.token("demo.service", "demo-service-secret", None).await;
    assert_eq!(r.json()["scope"], "read update");
    // The legacy DomainApi scope is tolerated and grants nothing extra.
    let r = h
        .token(
            "demo.service",
            "demo-service-secret",
            Some("DomainApi read"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["scope"], "read");
    // A scope the app lacks.
    let r = h
        .token("demo.service", "demo-service-secret", Some("read sec"))
        .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("sec")
    );
    // Identity scopes are never issued here.
    for s in ["openid", "profile", "offline_access"] {
        let r = h
            .token("demo.service", "demo-service-secret", Some(s))
            .await;
        assert_eq!(r.error(), "invalid_scope", "{s}");
    }
    // Scope names are case-sensitive.
    let r = h
        .token("demo.service", "demo-service-secret", Some("Read"))
        .await;
    assert_eq!(r.error(), "invalid_scope");
}

#[tokio::test]
async fn client_authentication_errors() {
    let h = host().await;
    let r = h.token("demo.service", "wrong", None).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert!(
        r.header("www-authenticate").unwrap().starts_with("Basic "),
        "Basic was used"
    );
    let r = h
        .form(
            "/id/connect/token",
            None,
            "grant_type=client_credentials&client_id=demo.service&client_secret=wrong",
        )
        .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert!(
        r.header("www-authenticate").is_none(),
        "no challenge after client_secret_post"
    );
    let r = h.token("nobody", "x", None).await;
    assert_eq!(r.error(), "invalid_client");
    let r = h
        .form(
            "/id/connect/token",
            None,
            "grant_type=client_credentials&client_id=demo.service",
        )
        .await;
    assert_eq!(
        r.error(),
        "invalid_client",
        "a confidential client without its secret"
    );
    // A public client that sends a secret.
    let r = h
        .form(
            "/id/connect/token",
            None,
            "grant_type=client_credentials&client_id=demo.spa&client_secret=x",
        )
        .await;
    assert_eq!(r.error(), "invalid_client");
    // Both authentication methods at once.
    let r = h
        .form(
            "/id/connect/token",
            Some(("demo.service", "demo-service-secret")),
            "grant_type=client_credentials&client_secret=demo-service-secret",
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
    // No client at all.
    let r = h
        .form("/id/connect/token", None, "grant_type=client_credentials")
        .await;
    assert_eq!(r.error(), "invalid_request");
    // Nothing internal leaks.
    assert!(
        !String::from_utf8_lossy(&r.body)
            .to_lowercase()
            .contains("sqlite")
    );
}

#[tokio::test]
async fn service_access_requires_system_user() {
    let h = host().await;
    let r = h.token("demo.webapp", "demo-webapp-secret", None).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
    let r = h
        .form(
            "/id/connect/token",
            None,
            "grant_type=client_credentials&client_id=demo.spa",
        )
        .await;
    assert_eq!(
        r.error(),
        "unauthorized_client",
        "a public client authenticates without a secret but has no SystemUser"
    );
}

/// Service access is a confidential app's: a public client, which proves
/// nothing about who it is, never acts as a SystemUser, even when its record
/// says so (a store written before the rule, or edited by hand). Before the
/// rule, this public app got a service token and a SAT, and its SAT
/// introspected active.
#[tokio::test]
async fn a_public_client_never_gets_service_access() {
    let h = host().await;
    let mut app = h.store.app("demo.spa").await.unwrap().unwrap();
    app.client_id = "demo.spa-with-system-user".into();
    app.system_user_allowed = true;
    app.system_user = Some("SYSTEM_APPLICATION_USER".into());
    app.scope = erpgate::ScopeSet::parse("read").unwrap();
    app.reference_tokens = erpgate_store::records::ReferenceTokenPolicy::AdministratorsOnly;
    h.store.insert_app(&app).await.unwrap();
    let r = h
        .form(
            "/id/connect/token",
            None,
            "grant_type=client_credentials&client_id=demo.spa-with-system-user&scope=read",
        )
        .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client"),
        "{:?}",
        r.json()
    );
    let r = h
        .issue(json!({"client_id":"demo.spa-with-system-user","kind":"sat","expires_in_days":1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json());
}

/// ERP.net never grants `sec` to external apps. An app whose stored `Scope`
/// names it (a store written before the rule) but that is not internal gets
/// neither a service token nor a PAT with `sec`, and no `sec` by default;
/// marked internal, it does.
#[tokio::test]
async fn sec_goes_to_internal_apps_only() {
    let h = host().await;
    let mut app = h.store.app("demo.reports").await.unwrap().unwrap();
    app.internal = false;
    assert!(h.store.update_app(&app).await.unwrap());
    let basic = Some(("demo.reports", "demo-reports-secret"));
    let r = h
        .form(
            "/id/connect/token",
            basic,
            "grant_type=client_credentials&scope=read%20sec",
        )
        .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope"),
        "{:?}",
        r.json()
    );
    let r = h
        .form("/id/connect/token", basic, "grant_type=client_credentials")
        .await;
    assert_eq!(r.json()["scope"], "read update", "no sec by default");
    let r = h
        .issue(json!({"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read sec","expires_in_days":1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json());

    app.internal = true;
    assert!(h.store.update_app(&app).await.unwrap());
    let r = h
        .form(
            "/id/connect/token",
            basic,
            "grant_type=client_credentials&scope=read%20sec",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let discovery = h.get("/id/.well-known/openid-configuration").await.json();
    assert!(
        !discovery["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("sec")),
        "not advertised to clients at large"
    );
}

#[tokio::test]
async fn disabled_app_stops_at_once() {
    let h = host().await;
    let token = h.service_token().await;
    assert_eq!(h.introspect(&token).await["active"], true);
    h.store
        .set_app_enabled("demo.service", false)
        .await
        .unwrap();
    let r = h.token("demo.service", "demo-service-secret", None).await;
    assert_eq!(r.error(), "invalid_client");
    assert_eq!(h.introspect(&token).await, json!({"active": false}));
    let pat = h.pat("alice", "read").await;
    h.store
        .set_app_enabled("demo.reports", false)
        .await
        .unwrap();
    assert_eq!(h.introspect(&pat).await, json!({"active": false}));
}

#[tokio::test]
async fn bad_input_gets_rfc_errors_and_changes_nothing() {
    let h = host().await;
    let pat = h.pat("alice", "read").await;
    let before = h.store_snapshot().await;
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        ("malformed form", form_req("/id/connect/token", b"grant_type=client_credentials&\xff\xfe=1".to_vec(), "application/x-www-form-urlencoded"), StatusCode::BAD_REQUEST, "invalid_request"),
        ("wrong content type", form_req("/id/connect/token", b"{\"grant_type\":\"client_credentials\"}".to_vec(), "application/json"), StatusCode::BAD_REQUEST, "invalid_request"),
        ("no content type", Request::post("/id/connect/token").body(Body::from("grant_type=client_credentials")).unwrap(), StatusCode::BAD_REQUEST, "invalid_request"),
        ("duplicated parameter", form_req("/id/connect/token", b"grant_type=client_credentials&grant_type=client_credentials&client_id=demo.service&client_secret=demo-service-secret".to_vec(), "application/x-www-form-urlencoded"), StatusCode::BAD_REQUEST, "invalid_request"),
        ("oversized body", form_req("/id/connect/token", format!("grant_type=client_credentials&pad={}", "x".repeat(64 * 1024)).into_bytes(), "application/x-www-form-urlencoded"), StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        ("unknown grant_type", form_req("/id/connect/token", b"grant_type=password&username=a&password=b".to_vec(), "application/x-www-form-urlencoded"), StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        ("missing grant_type", form_req("/id/connect/token", b"client_id=demo.service".to_vec(), "application/x-www-form-urlencoded"), StatusCode::BAD_REQUEST, "invalid_request"),
        ("duplicated token at revocation", form_with_basic("/id/connect/revocation", &format!("token={pat}&token={pat}"), "demo.reports", "demo-reports-secret"), StatusCode::BAD_REQUEST, "invalid_request"),
        ("oversized revocation", form_with_basic("/id/connect/revocation", &format!("token={}", "x".repeat(20_000)), "demo.reports", "demo-reports-secret"), StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        ("wrong content type at revocation", {
            let mut r = form_with_basic("/id/connect/revocation", &format!("token={pat}"), "demo.reports", "demo-reports-secret");
            r.headers_mut().insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
            r
        }, StatusCode::BAD_REQUEST, "invalid_request"),
        ("duplicated token at introspection", form_with_basic("/id/connect/introspect", &format!("token={pat}&token=x"), "erpgate.edge", "demo-edge-secret"), StatusCode::BAD_REQUEST, "invalid_request"),
    ];
    for (what, req, status, error) in cases {
        let r = h.send(req).await;
        assert_eq!(
            r.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error(), error, "{what}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }
    assert_eq!(h.store_snapshot().await, before, "the store is unchanged");
    assert_eq!(
        h.introspect(&pat).await["active"],
        true,
        "the PAT survived the malformed revocations"
    );
    // Malformed admin requests do not mint anything either.
    let r = h.admin("POST", "/admin/reference-tokens", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h.issue(json!({"client_id":"demo.reports","kind":"pat","user":"alice","expires_in_days":30,"extra":1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.store_snapshot().await, before);
}

fn form_req(path: &str, body: Vec<u8>, content_type: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::AUTHORIZATION,
            basic_header("demo.service", "demo-service-secret"),
        )
        .body(Body::from(body))
        .unwrap()
}

fn form_with_basic(path: &str, body: &str, id: &str, secret: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(id, secret))
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn introspection_authentication() {
    let h = host().await;
    let token = h.service_token().await;
    let body = format!("token={token}");
    let r = h.form("/id/connect/introspect", None, &body).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert!(r.header("www-authenticate").is_some());
    let r = h
        .form(
            "/id/connect/introspect",
            Some(("erpgate.edge", "nope")),
            &body,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .form("/id/connect/introspect", Some(("demo.spa", "")), &body)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "public apps cannot introspect"
    );
    // A confidential trusted app may.
    let r = h
        .form(
            "/id/connect/introspect",
            Some(("demo.webapp", "demo-webapp-secret")),
            &body,
        )
        .await;
    assert_eq!(r.json()["active"], true);
    let r = h
        .form(
            "/id/connect/introspect",
            Some(("erpgate.edge", "demo-edge-secret")),
            "",
        )
        .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn introspection_of_each_token_kind() {
    let h = host().await;
    // Unknown or malformed tokens.
    for t in [
        "enrt_0000000000000000000000000000000000000000000000000000000000000000",
        "a.b.c",
        "garbage",
    ] {
        assert_eq!(h.introspect(t).await, json!({"active": false}), "{t}");
    }
    // A client-credentials JWT.
    let jwt = h.service_token().await;
    let r = h.introspect(&jwt).await;
    assert_eq!(r["active"], true);
    assert_eq!(r["erp_token_kind"], "service");
    assert_eq!(r["sub"], "SYSTEM_APPLICATION_USER");
    assert_eq!(r["client_id"], "demo.service");
    assert_eq!(r["scope"], "read update");
    assert_eq!(r["db"], "demo");
    assert_eq!(r["exp"], NOW + 3600);
    assert_eq!(r["iat"], NOW);
    assert_eq!(r["token_type"], "Bearer");
    // A PAT acts as its user.
    let pat = h.pat("alice", "read").await;
    let r = h.introspect(&pat).await;
    assert_eq!(r["active"], true);
    assert_eq!(r["erp_token_kind"], "pat");
    assert_eq!(r["sub"], "alice");
    assert_eq!(r["scope"], "read");
    assert_eq!(r["client_id"], "demo.reports");
    assert_eq!(r["db"], "demo");
    assert_eq!(r["iat"], NOW);
    // A SAT acts as the app's SystemUser, not as whoever minted it.
    let r = h
        .issue(
            json!({"client_id":"demo.reports","kind":"sat","scope":"read sec","expires_in_days":1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let sat = r.json()["token"].as_str().unwrap().to_owned();
    let r = h.introspect(&sat).await;
    assert_eq!(
        (r["erp_token_kind"].as_str(), r["sub"].as_str()),
        (Some("sat"), Some("SYSTEM_APPLICATION_USER"))
    );
    // Expiry.
    h.clock.advance(3601);
    assert_eq!(
        h.introspect(&jwt).await,
        json!({"active": false}),
        "expired JWT"
    );
    h.clock.advance(86_400);
    assert_eq!(
        h.introspect(&sat).await,
        json!({"active": false}),
        "expired SAT"
    );
    assert_eq!(h.introspect(&pat).await["active"], true);
}

#[tokio::test]
async fn introspection_updates_last_used() {
    let h = host().await;
    let pat = h.pat("alice", "read").await;
    let hash = TokenHash::of(&pat).to_hex();
    assert_eq!(
        h.store
            .reference_token(&hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        None
    );
    h.clock.advance(10);
    h.introspect(&pat).await;
    h.state.flush_usage().await;
    assert_eq!(
        h.store
            .reference_token(&hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(NOW + 10)
    );
}

#[tokio::test]
async fn a_jwt_from_another_signer_is_inactive() {
    let h = host().await;
    let fixtures = erpgate_testkit::Fixtures::load_default().unwrap();
    let mut claims = erpgate_testkit::preset_claims(&fixtures, "service", NOW).unwrap();
    claims["iss"] = json!("https://demo.my.erp.net/id");
    claims["client_id"] = json!("demo.service");
    let forged = fixtures.mint("rsa-a", &claims).unwrap();
    assert_eq!(h.introspect(&forged).await, json!({"active": false}));
}

#[tokio::test]
async fn revocation_of_reference_tokens_and_jwts() {
    let h = host().await;
    let pat = h.pat("alice", "read").await;
    let other = h.pat("alice", "read").await;
    let jwt = h.service_token().await;
    // Another client cannot revoke it, and is not told it exists.
    let r = h
        .form(
            "/id/connect/revocation",
            Some(("demo.service", "demo-service-secret")),
            &format!("token={pat}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.introspect(&pat).await["active"], true);
    // Its own client can.
    let r = h
        .form(
            "/id/connect/revocation",
            Some(("demo.reports", "demo-reports-secret")),
            &format!("token={pat}&token_type_hint=access_token"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.introspect(&pat).await, json!({"active": false}));
    assert_eq!(
        h.introspect(&other).await["active"],
        true,
        "only that token"
    );
    // Unknown tokens: 200.
    let r = h
        .form(
            "/id/connect/revocation",
            Some(("demo.reports", "demo-reports-secret")),
            "token=enrt_0000000000000000000000000000000000000000000000000000000000000000",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // A JWT access token is revoked by jti.
    let r = h
        .form(
            "/id/connect/revocation",
            None,
            &format!("token={jwt}&client_id=demo.service&client_secret=demo-service-secret"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.introspect(&jwt).await, json!({"active": false}));
    // Client authentication is required.
    let r = h
        .form("/id/connect/revocation", None, &format!("token={other}"))
        .await;
    assert_eq!(r.error(), "invalid_request");
    let r = h
        .form(
            "/id/connect/revocation",
            Some(("demo.reports", "bad")),
            &format!("token={other}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The feed lists both revocations, in order, with the token's hash and the jti.
    let feed = h.get_feed("").await;
    let events = feed["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["kind"], "token_sha256");
    assert_eq!(events[0]["value"], TokenHash::of(&pat).to_hex());
    assert_eq!(events[1]["kind"], "jti");
    assert_eq!(events[1]["value"], jwt_parts(&jwt).1["jti"]);
    assert_eq!(events[1]["expires_at"], NOW + 3600);
    // Paging by cursor.
    let next = h.get_feed(feed["cursor"].as_str().unwrap()).await;
    assert!(next["events"].as_array().unwrap().is_empty());
    assert_eq!(next["cursor"], feed["cursor"]);
    assert_eq!(next["has_more"], false);
    // It parses with the core's own feed reader.
    let page = erpgate::revocation::parse_page(200, feed.to_string().as_bytes()).unwrap();
    assert_eq!(page.events.len(), 2);
}

impl Host {
    async fn get_feed(&self, cursor: &str) -> serde_json::Value {
        let r = self
            .send(
                Request::get(format!("/id/connect/revocation/feed?cursor={cursor}"))
                    .header(
                        header::AUTHORIZATION,
                        basic_header("erpgate.edge", "demo-edge-secret"),
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        r.json()
    }
}

#[tokio::test]
async fn feed_requires_authentication_and_a_valid_cursor() {
    let h = host().await;
    let r = h.get("/id/connect/revocation/feed").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            Request::get("/id/connect/revocation/feed?cursor=abc")
                .header(
                    header::AUTHORIZATION,
                    basic_header("erpgate.edge", "demo-edge-secret"),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
}

#[tokio::test]
async fn reference_token_policy_is_enforced() {
    let h = host().await;
    let base = json!({"client_id":"demo.reports","kind":"pat","user":"alice","expires_in_days":30});
    let with = |patch: serde_json::Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // Default scopes: all of the app's.
    let r = h.issue(base.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["record"]["scopes"], "read sec update");
    let token = r.json()["token"].as_str().unwrap().to_owned();
    assert!(erpgate::credential::is_reference_token(&token));
    assert!(r.json()["record"].get("hash").is_none());
    // The app's user-type gate: a community user gets no PAT (before: 201),
    // nor does anyone from an app that admits no user type.
    let r = h.issue(with(json!({"user":"bob"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json());
    let mut app = h.store.app("demo.reports").await.unwrap().unwrap();
    app.internal_users_allowed = false;
    app.client_id = "demo.reports-no-users".into();
    h.store.insert_app(&app).await.unwrap();
    let r = h
        .issue(with(json!({"client_id":"demo.reports-no-users"})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json());
    // Apps whose policy is None refuse.
    let r = h.issue(with(json!({"client_id":"demo.service"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Scopes must be a subset of the app's, identity scopes excluded.
    assert_eq!(
        h.issue(with(json!({"scope":"read admin"}))).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.issue(with(json!({"scope":"openid"}))).await.status,
        StatusCode::BAD_REQUEST
    );
    // An expiry is required, in the future, within the maximum.
    assert_eq!(
        h.issue(json!({"client_id":"demo.reports","kind":"pat","user":"alice"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.issue(with(json!({"expires_in_days":null,"expires_at":NOW - 1})))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.issue(with(json!({"expires_in_days":10_000})))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // A PAT needs a real user.
    assert_eq!(
        h.issue(with(json!({"user":"ghost"}))).await.status,
        StatusCode::NOT_FOUND
    );
    // Administrators only: non-admin users cannot hold one.
    let mut app = h.store.app("demo.reports").await.unwrap().unwrap();
    app.client_id = "demo.admins".into();
    app.reference_tokens = erpgate_store::records::ReferenceTokenPolicy::AdministratorsOnly;
    h.store.insert_app(&app).await.unwrap();
    assert_eq!(
        h.issue(with(json!({"client_id":"demo.admins"})))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.issue(with(json!({"client_id":"demo.admins","user":"admin"})))
            .await
            .status,
        StatusCode::CREATED
    );
    // A SAT needs SystemUserAllowed and a SystemUser.
    let mut app = h.store.app("demo.reports").await.unwrap().unwrap();
    app.client_id = "demo.nosystem".into();
    app.system_user_allowed = false;
    h.store.insert_app(&app).await.unwrap();
    assert_eq!(
        h.issue(json!({"client_id":"demo.nosystem","kind":"sat","expires_in_days":1}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

/// The admin API and the metrics shared the public listener: anyone who
/// reached the host could try the admin credential and read the metrics.
/// They are on the operator's listener only.
#[tokio::test]
async fn the_public_listener_serves_no_admin_api_and_no_metrics() {
    let h = host().await;
    for (method, path) in [
        ("GET", "/admin/reference-tokens"),
        ("POST", "/admin/reference-tokens"),
        ("DELETE", "/admin/reference-tokens/x"),
        ("POST", "/admin/keys/rotate"),
        ("GET", "/admin/sessions"),
        ("DELETE", "/admin/sessions/x"),
        ("GET", "/metrics"),
    ] {
        let response = erpgate_cli::app(h.state.clone())
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, "Bearer admin")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let served = h.admin("GET", "/admin/reference-tokens", None).await;
    assert_eq!(
        served.status,
        StatusCode::OK,
        "the operator's listener serves it"
    );
}

#[tokio::test]
async fn admin_api_requires_the_credential() {
    let h = host().await;
    for (method, path) in [
        ("GET", "/admin/reference-tokens"),
        ("POST", "/admin/reference-tokens"),
        ("DELETE", "/admin/reference-tokens/x"),
    ] {
        let r = h
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        let r = h
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, "Bearer wrong")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let pat = h.pat("alice", "read").await;
    let list = h.admin("GET", "/admin/reference-tokens", None).await;
    let text = String::from_utf8_lossy(&list.body).to_string();
    assert!(
        !text.contains(&pat) && !text.contains(&TokenHash::of(&pat).to_hex()),
        "no values, no hashes"
    );
    let id = list.json()["tokens"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        h.admin("DELETE", &format!("/admin/reference-tokens/{id}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.admin("DELETE", &format!("/admin/reference-tokens/{id}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.introspect(&pat).await["active"], false);
}

#[tokio::test]
async fn helpers_health_and_metrics() {
    let h = host().await;
    assert_eq!(
        h.get("/tools/sha256?secret=DEMO").await.json()["sha256"],
        "T/AGymuI51LwjLeIFxRQXOs9IHnupDKs/ajhWODR2C4="
    );
    assert_eq!(
        h.get("/sys/tools/sha256?secret=DEMO").await.json()["sha256"],
        "T/AGymuI51LwjLeIFxRQXOs9IHnupDKs/ajhWODR2C4="
    );
    assert_eq!(h.get("/tools/sha256").await.error(), "invalid_request");
    let ad = h.get("/sys/auto-discovery").await.json();
    assert_eq!(ad["DbName"], "demo");
    assert_eq!(
        h.get("/tools/auto-discovery").await.json(),
        ad,
        "both documented paths answer the same"
    );
    let id = ad["WebSites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Type"] == "ID")
        .expect("the Identity Server is listed");
    assert_eq!(id["Url"], "https://demo.my.erp.net/id");
    let api = ad["WebSites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Type"] == "DomainAPI")
        .unwrap();
    assert_eq!(
        api["AdditionalProperties"]["ODataServiceRoot"],
        "https://demo.my.erp.net/api/domain/odata/"
    );
    assert_eq!(h.get("/health").await.json()["status"], "ok");
    h.service_token().await;
    h.pat("alice", "read").await;
    let metrics = String::from_utf8(h.get("/metrics").await.body).unwrap();
    assert!(metrics.contains("erpgate_requests_total"), "{metrics}");
    assert!(metrics.contains("erpgate_tokens_issued_total"), "{metrics}");
    assert!(metrics.contains("kind=\"pat\""), "{metrics}");
    assert_eq!(h.get("/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_until_they_expire() {
    let h = host().await;
    let old = h.service_token().await;
    let old_kid = jwt_parts(&old).0["kid"].as_str().unwrap().to_owned();
    // Through the admin API: published at once, signing only after every
    // replica has had time to publish it too.
    let rotated = h.admin("POST", "/admin/keys/rotate", None).await;
    assert_eq!(rotated.status, StatusCode::CREATED);
    let rotated_kid = rotated.json()["kid"].as_str().unwrap().to_owned();
    let jwks = h
        .get("/id/.well-known/openid-configuration/jwks")
        .await
        .json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let early = h.service_token().await;
    assert_eq!(
        jwt_parts(&early).0["kid"],
        old_kid.as_str(),
        "not signing before every replica publishes it"
    );
    h.clock
        .advance(erpgate_identity::keys::PUBLISH_BEFORE_SIGNING_S);
    h.state
        .identity
        .keys
        .reload(h.store.as_ref(), h.now())
        .await
        .unwrap();
    let new = h.service_token().await;
    assert_eq!(jwt_parts(&new).0["kid"], rotated_kid.as_str());
    let new_kid = jwt_parts(&new).0["kid"].as_str().unwrap().to_owned();
    assert_ne!(old_kid, new_kid, "the new key signs");
    assert_eq!(
        h.introspect(&old).await["active"],
        true,
        "the old key still verifies"
    );
    h.clock.advance(3600 + 301);
    h.state
        .identity
        .keys
        .reload(h.store.as_ref(), h.now())
        .await
        .unwrap();
    let jwks = h
        .get("/id/.well-known/openid-configuration/jwks")
        .await
        .json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        vec![new_kid.as_str()],
        "the old key is gone once its tokens expired"
    );
}

/// ERP.net (§2.15): an app with a SystemUser accepts only that user over
/// the legacy schemes; ErpLogin as anyone else is refused, as Basic is.
#[tokio::test]
async fn erplogin_honours_the_apps_system_user() {
    let h = host().await;
    let mut app = h.store.app("demo.bi").await.unwrap().unwrap();
    app.client_id = "demo.bi-bound".into();
    app.system_user = Some("alice".into());
    h.store.insert_app(&app).await.unwrap();
    let login = |user: &str, pass: &str| {
        Request::builder()
            .method("POST")
            .uri("/api/domain/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"user": user, "pass": pass, "app": "demo.bi-bound"}).to_string(),
            ))
            .unwrap()
    };
    let r = h.send(login("admin", "admin-password")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.json());
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("different system user")),
        "{:?}",
        r.json()
    );
    let r = h.send(login("alice", "alice-password")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert!(
        r.json()["authorization"]
            .as_str()
            .unwrap()
            .starts_with("ErpSession ")
    );
}

/// ERP.net looks reference tokens up on each request and applies current
/// policies (issue 17, item 2, host side): introspection returned the scopes
/// stored at minting whatever became of the app. It now answers the
/// intersection with the app's current `Scope`, and a token the app's
/// current ReferenceTokens policy no longer allows is inactive.
#[tokio::test]
async fn reference_tokens_follow_the_apps_current_state() {
    let h = host().await;
    let pat = h.pat("alice", "read update").await;
    assert_eq!(h.introspect(&pat).await["scope"], "read update");
    let mut app = h.store.app("demo.reports").await.unwrap().unwrap();
    app.scope = erpgate::ScopeSet::parse("read sec").unwrap();
    assert!(h.store.update_app(&app).await.unwrap());
    let seen = h.introspect(&pat).await;
    assert_eq!(
        (seen["active"].as_bool(), seen["scope"].as_str()),
        (Some(true), Some("read"))
    );
    app.reference_tokens = erpgate_store::records::ReferenceTokenPolicy::AdministratorsOnly;
    assert!(h.store.update_app(&app).await.unwrap());
    assert_eq!(
        h.introspect(&pat).await,
        json!({"active": false}),
        "alice is no administrator"
    );
    app.reference_tokens = erpgate_store::records::ReferenceTokenPolicy::AuthenticatedUsers;
    assert!(h.store.update_app(&app).await.unwrap());
    assert_eq!(h.introspect(&pat).await["active"], true);
    app.reference_tokens = erpgate_store::records::ReferenceTokenPolicy::None;
    assert!(h.store.update_app(&app).await.unwrap());
    assert_eq!(h.introspect(&pat).await, json!({"active": false}));
}

//! The host's parsers of what anyone can send before authenticating: form
//! bodies (`Form::parse`), OAuth client Basic credentials, legacy Basic
//! credentials (`<ApplicationUri>\<login>:<password>`), the `Cookie` header
//! and the session cookie's MAC. None may panic, and each keeps its
//! contract on any input.

use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderValue, header};
use erpgate_erp_api::legacy::{APPLICATION_HEADER, basic_login};
use erpgate_identity::oauth::client_auth::basic_credentials;
use erpgate_identity::oauth::form::Form;
use erpgate_identity::signin::{SESSION_COOKIE, SigninState, cookie};

fn signin() -> &'static SigninState {
    static STATE: OnceLock<SigninState> = OnceLock::new();
    STATE.get_or_init(|| SigninState::new(Arc::new(erpgate_store::MemoryStore::new())))
}

/// One input: panics on a failed property, like the fuzz target.
pub fn run(data: &[u8]) {
    form(data);
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    authorization(&value);
    cookies(&value);
}

/// A form parses to non-empty values, and what it parsed to, encoded again,
/// parses to the same.
fn form(data: &[u8]) {
    let Ok(parsed) = Form::parse(data) else {
        return;
    };
    assert!(parsed.0.values().all(|v| !v.is_empty()));
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(parsed.0.iter())
        .finish();
    let again = Form::parse(encoded.as_bytes()).expect("a re-encoded form parses");
    assert_eq!(again.0, parsed.0);
}

/// Client Basic credentials and legacy Basic credentials round-trip
/// through their encodings.
fn authorization(value: &HeaderValue) {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    if let Ok(Some((id, secret))) = basic_credentials(&headers) {
        use base64::Engine as _;
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let again = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                encode(&id),
                encode(&secret)
            ))
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&again).expect("ASCII"),
        );
        assert_eq!(basic_credentials(&h).ok().flatten(), Some((id, secret)));
    }
    let Ok(text) = value.to_str() else {
        return;
    };
    let rest = text.split_once(' ').map_or(text, |(_, rest)| rest);
    let mut with_app = HeaderMap::new();
    with_app.insert(APPLICATION_HEADER, HeaderValue::from_static("app"));
    for headers in [HeaderMap::new(), with_app] {
        // What it read, written as `<app>\<login>:<password>`, reads the same.
        if let Ok(found) = basic_login(rest, &headers) {
            use base64::Engine as _;
            assert!(!found.client_id.contains('\\'));
            let again = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}\\{}:{}",
                found.client_id, found.login, found.password
            ));
            assert_eq!(basic_login(&again, &HeaderMap::new()), Ok(found));
        }
    }
}

/// A cookie value never spans a `;`, and no input forges a session cookie;
/// a real one still verifies.
fn cookies(value: &HeaderValue) {
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, value.clone());
    if let Some(found) = cookie(&headers, SESSION_COOKIE) {
        assert!(!found.contains(';'));
        assert_eq!(signin().sid_from_cookie(found), None, "forged: {found}");
    }
    let sid = erpgate_store::secrets::random_hex(16);
    let real = signin().session_cookie_value(&sid);
    assert_eq!(signin().sid_from_cookie(&real), Some(sid.as_str()));
}

//! The signed-in session's endpoints: end session and userinfo.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use erpgate::TokenKind;
use serde_json::{Value, json};

use super::cookies::{CSRF_COOKIE, SESSION_COOKIE, cookie, error_page, set_cookie, with_cookie};
use super::pages;
use crate::oauth::form::Form;
use crate::service::Identity;
use erpgate_store::secrets::random_hex;
use serde_json::Map;
use subtle::ConstantTimeEq;

/// `GET /id/connect/endsession`: ends the identity session (and its refresh
/// tokens; the edge learns of it through the revocation feed), then returns
/// to the app only if `post_logout_redirect_uri` is one of its registered
/// logout URIs.
pub async fn endsession(
    State(state): State<Identity>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(params) = Form::parse(query.unwrap_or_default().as_bytes()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-out request",
            "The request repeats a parameter or is not valid UTF-8.",
        );
    };
    let now = state.clock.now();
    let hint = params
        .get("id_token_hint")
        .and_then(|t| crate::oauth::introspect::verify_own(&state, t, "JWT"));
    let hint_client = hint
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let client = params.get("client_id").map(str::to_owned).or(hint_client);
    let cookie_sid = cookie(&headers, SESSION_COOKIE)
        .and_then(|v| state.signin.sid_from_cookie(v))
        .map(str::to_owned);
    if let Some(sid) = &cookie_sid
        && !logout_confirmed(&params, &headers, hint.as_ref(), sid)
    {
        return confirm_sign_out(&state, &params);
    }
    if let Some(sid) = &cookie_sid {
        let event_expiry = now + state.config.instance.access_token_lifetime_s;
        // The ERP session of that sid ends too, freeing its license at once.
        if let Err(e) = state.store.close_api_session(&format!("sid:{sid}")).await {
            tracing::warn!(error = %e, "closing the ERP session failed");
        }
        match state.store.end_session(sid, now, event_expiry).await {
            Ok(true) => tracing::info!("identity session ended"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not end a session"),
        }
    }
    let clear = set_cookie(&state, SESSION_COOKIE, "", "Lax", Some(0));
    let target = match (params.get("post_logout_redirect_uri"), client) {
        (Some(uri), Some(client)) => match state.store.app(&client).await {
            Ok(Some(app)) if app.logout_uris.iter().any(|u| u == uri) => Some(uri.to_owned()),
            _ => None,
        },
        _ => None,
    };
    let response = match target {
        Some(uri) => {
            let location = match params.get("state") {
                Some(s) => {
                    let q = form_urlencoded::Serializer::new(String::new())
                        .append_pair("state", s)
                        .finish();
                    let sep = if uri.contains('?') { '&' } else { '?' };
                    format!("{uri}{sep}{q}")
                }
                None => uri,
            };
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => pages::respond(StatusCode::OK, pages::signed_out()),
    };
    with_cookie(response, clear)
}

/// Whether ending session `sid` is what its user asked for: an ID token of
/// that session as `id_token_hint`, or the confirmation form, whose `csrf`
/// matches the `SameSite=Strict` cookie. Anything else may be a link on
/// another site (logout CSRF), so the user is asked first.
fn logout_confirmed(
    params: &Form,
    headers: &HeaderMap,
    hint: Option<&Map<String, Value>>,
    sid: &str,
) -> bool {
    if hint.and_then(|c| c.get("sid")).and_then(Value::as_str) == Some(sid) {
        return true;
    }
    match (params.get("csrf"), cookie(headers, CSRF_COOKIE)) {
        (Some(sent), Some(expected)) if !expected.is_empty() => {
            sent.as_bytes().ct_eq(expected.as_bytes()).into()
        }
        _ => false,
    }
}

/// Asks the signed-in user to confirm signing out; the form repeats the
/// request's parameters with a fresh CSRF token.
fn confirm_sign_out(state: &Identity, params: &Form) -> Response {
    let csrf = random_hex(32);
    let fields: Vec<(&str, &str)> = params
        .0
        .iter()
        .filter(|(name, _)| name.as_str() != "csrf")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let action = format!("{}/connect/endsession", state.issuer);
    let page = pages::confirm_sign_out(&action, &fields, &csrf);
    let csrf_cookie = set_cookie(state, CSRF_COOKIE, &csrf, "Strict", None);
    with_cookie(pages::respond(StatusCode::OK, page), csrf_cookie)
}

/// `GET|POST /id/connect/userinfo` with a user access token carrying
/// `openid`: `Bearer`, or `DPoP` with the proof of the key the token is
/// bound to (RFC 9449 §7).
pub async fn userinfo(
    State(state): State<Identity>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (token, dpop) = match authorization {
        Some(v) if v.starts_with("Bearer ") => (v.get(7..).map(str::trim), false),
        Some(v) if v.starts_with("DPoP ") => (v.get(5..).map(str::trim), true),
        _ => (None, false),
    };
    let refuse = |error: &str| {
        let scheme = if dpop { "DPoP" } else { "Bearer" };
        let mut r = (StatusCode::UNAUTHORIZED, Json(json!({ "error": error }))).into_response();
        if let Ok(v) =
            HeaderValue::from_str(&format!("{scheme} realm=\"ERP.net\", error=\"{error}\""))
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let Some(token) = token else {
        return refuse("invalid_request");
    };
    let now = state.clock.now();
    let Some((_, principal)) =
        crate::oauth::introspect::verify_own_access_token(&state, token, now, dpop)
    else {
        return refuse("invalid_token");
    };
    if dpop {
        if principal.jkt().is_none() {
            return refuse("invalid_token");
        }
        let endpoint = format!("{}/connect/userinfo", state.issuer);
        let target = crate::oauth::dpop::Target {
            method: method.as_str(),
            uri: &endpoint,
            access_token: Some(token),
        };
        match crate::oauth::dpop::proven_key(&state, &headers, &target) {
            Ok(Some(jkt)) if principal.jkt() == Some(jkt.as_str()) => {}
            Ok(_) => return refuse("invalid_dpop_proof"),
            Err(e) => return refuse(e.error),
        }
    }
    let jti = principal.jti().unwrap_or("");
    if state.store.jti_revoked(jti).await.unwrap_or(true) {
        return refuse("invalid_token");
    }
    let live = crate::oauth::introspect::session_live(&state, principal.sid()).await;
    if !live.unwrap_or(false) {
        return refuse("invalid_token");
    }
    let scopes = &principal.scopes;
    if principal.kind != TokenKind::User {
        return refuse("invalid_token");
    }
    let login = principal.subject();
    if !scopes.contains("openid") {
        let mut r = (
            StatusCode::FORBIDDEN,
            Json(json!({ "error": "insufficient_scope" })),
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"ERP.net\", error=\"insufficient_scope\", scope=\"openid\"",
            ),
        );
        return r;
    }
    let Ok(Some(user)) = state.store.user(login).await else {
        return refuse("invalid_token");
    };
    let mut body = serde_json::Map::new();
    body.insert("sub".into(), json!(user.login));
    if scopes.contains("profile") {
        for (name, value) in [
            ("name", json!(user.name)),
            ("preferred_username", json!(user.login)),
            ("email", json!(user.email)),
            ("email_verified", json!(false)),
            ("locale", json!(user.locale)),
            ("id", json!(user.id)),
            ("user_type", json!(user.user_type)),
            ("is_admin", json!(user.is_admin.to_string())),
        ] {
            body.insert(name.into(), value);
        }
    }
    let body = Value::Object(body);
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

//! The sign-in pages' cookies (SSO session, CSRF double submit) and their
//! error pages.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::pages;
use crate::service::Identity;
use erpgate_store::records::{IdentitySession, User};

/// The SSO cookie.
pub const SESSION_COOKIE: &str = "erpgate.session";
/// The CSRF double-submit cookie.
pub const CSRF_COOKIE: &str = "erpgate.csrf";

/// One cookie's value from the `Cookie` headers.
/// The value of the cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

pub(crate) fn set_cookie(
    state: &Identity,
    name: &str,
    value: &str,
    same_site: &str,
    max_age: Option<u64>,
) -> Option<HeaderValue> {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}{secure}{age}"
    ))
    .ok()
}

pub(crate) fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    pages::respond(status, pages::error(title, detail))
}

pub(crate) fn unavailable_page() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Try again in a moment.",
    )
}

/// The signed-in session behind the cookie, if it is live.
pub(crate) async fn current_session(
    state: &Identity,
    headers: &HeaderMap,
) -> Option<(IdentitySession, User)> {
    let value = cookie(headers, SESSION_COOKIE)?;
    let sid = state.signin.sid_from_cookie(value)?;
    let session = state.store.session(sid).await.ok()??;
    if !state.session_live(&session, state.clock.now()) {
        return None;
    }
    let user = state.store.user(&session.login).await.ok()??;
    Some((session, user))
}

//! The legacy schemes ERP.net still accepts (§2.15), which the policy passes
//! through to the API:
//!
//! - **HTTP Basic** needs a trusted app with BasicAuthenticationAllowed. ERP.net
//!   does not document how the request names the app; here it is the user name
//!   `<ApplicationUri>\<login>` (what BI tools can send), or a bare login with
//!   an `X-ERP-Application` header. An app with a SystemUser accepts only that
//!   user.
//! - **ErpLogin**: `POST /api/domain/login` with `{"user","pass","app","lang"}`
//!   (the same app rule; `app` names it) answers
//!   `{"authorization":"ErpSession <id>"}`; later calls send that header.
//!   Logging in again with the same app, user and password reuses the live
//!   session. `POST /api/domain/logout` answers 200 and keeps the session
//!   (v27.1 behaviour): it ends by the 20-minute sliding rule.
//!
//! Both hold a license slot like any session.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::sessions::{ApiSession, Holder, Origin};
use crate::errors::{erp_error, session_refused};
use crate::state::ErpApi;
use erpgate_identity::PasswordOutcome;
use erpgate_identity::accounts::may_use_api;
use erpgate_store::records::{TrustedApp, User};

/// The header that names the app for a bare Basic login.
pub const APPLICATION_HEADER: &str = "x-erp-application";

fn refused(message: &str) -> Box<Response> {
    let mut r = erp_error(StatusCode::UNAUTHORIZED, "AuthenticationFailed", message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Basic realm=\"ERP.net\""),
    );
    Box::new(r)
}

/// Checks an app, a login and a password the way both legacy schemes do,
/// for the client at `address`.
async fn check(
    state: &ErpApi,
    client_id: &str,
    login: &str,
    password: &str,
    address: Option<IpAddr>,
) -> Result<(TrustedApp, User), Box<Response>> {
    let now = state.identity.clock.now();
    let app = match state.identity.store.app(client_id).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            return Err(refused(
                "The application is not found among the trusted applications.",
            ));
        }
        Err(_) => return Err(refused("The application could not be checked.")),
    };
    if !app.enabled {
        return Err(refused("The trusted application is not enabled."));
    }
    if !app.basic_auth_allowed {
        return Err(refused(
            "The application is not configured to allow Basic authentication.",
        ));
    }
    if app.system_user.as_deref().is_some_and(|s| s != login) {
        return Err(refused(
            "The application is bound to a different system user.",
        ));
    }
    match state
        .identity
        .check_password(&app.client_id, login, password, address, now)
        .await
    {
        PasswordOutcome::Accepted(user) if may_use_api(&app, &user) => Ok((app, user)),
        PasswordOutcome::Accepted(_) => {
            Err(refused("The user is not allowed to use this application."))
        }
        PasswordOutcome::Refused => Err(refused("The user name or password is incorrect.")),
        PasswordOutcome::Throttled(retry_after) => {
            let mut r = erp_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyAttempts",
                "Too many sign-in attempts. Try again later.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            Err(Box::new(r))
        }
        PasswordOutcome::Unavailable => Err(Box::new(erp_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The password could not be checked now. Try again in a moment.",
        ))),
    }
}

async fn enter(
    state: &ErpApi,
    key: String,
    user: &User,
    app: &TrustedApp,
    origin: Origin,
) -> Result<ApiSession, Box<Response>> {
    let who = Holder {
        key,
        login: user.login.clone(),
        client_id: Some(app.client_id.clone()),
        origin,
    };
    state
        .api
        .sessions
        .enter(&who, state.identity.clock.now())
        .await
        .map_err(|e| Box::new(session_refused(e)))
}

/// The session behind a legacy credential, if the request carries one;
/// `peer` is the connection's address.
pub async fn authenticate(
    state: &ErpApi,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    now: u64,
) -> Result<Option<ApiSession>, Box<Response>> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(None);
    };
    if scheme.eq_ignore_ascii_case("erpsession") {
        return match state.api.sessions.resume(rest.trim(), now).await {
            Ok(Some(session)) if session.origin == Origin::ErpLogin => Ok(Some(session)),
            Ok(_) => Err(refused("The ERP session has ended; log in again.")),
            Err(e) => Err(Box::new(session_refused(e))),
        };
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let basic = basic_login(rest, headers).map_err(refused)?;
    let address = state.identity.passwords.client_address(peer, headers);
    let (app, user) = check(
        state,
        &basic.client_id,
        &basic.login,
        &basic.password,
        address,
    )
    .await?;
    let key = format!("basic:{}:{}", app.client_id, user.login);
    enter(state, key, &user, &app, Origin::Basic)
        .await
        .map(Some)
}

/// What a legacy Basic credential names.
#[derive(Debug, PartialEq, Eq)]
pub struct BasicLogin {
    /// The trusted application.
    pub client_id: String,
    /// The user.
    pub login: String,
    /// The password.
    pub password: String,
}

/// Reads the part of `Authorization: Basic …` after the scheme: the app is
/// the user name's `<ApplicationUri>\` prefix, else the `X-ERP-Application`
/// header. `Err` carries the reason to answer.
pub fn basic_login(credentials: &str, headers: &HeaderMap) -> Result<BasicLogin, &'static str> {
    let malformed = "The Basic credentials are malformed.";
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(malformed)?;
    let (name, password) = decoded.split_once(':').ok_or(malformed)?;
    let (client_id, login) = match name.split_once('\\') {
        Some((app, login)) => (app, login),
        None => match headers
            .get(APPLICATION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(app) => (app, name),
            None => {
                return Err(
                    "Name the trusted application: user name <ApplicationUri>\\<login>, or the X-ERP-Application header.",
                );
            }
        },
    };
    Ok(BasicLogin {
        client_id: client_id.to_owned(),
        login: login.to_owned(),
        password: password.to_owned(),
    })
}

/// The ErpLogin body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    user: String,
    pass: String,
    app: String,
    /// Accepted for compatibility; the emulator keeps no per-session language.
    #[serde(default, rename = "lang")]
    _lang: Option<serde::de::IgnoredAny>,
}

/// `POST /api/domain/login`.
pub async fn login(
    State(state): State<ErpApi>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return erp_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The body must be JSON: {\"user\",\"pass\",\"app\",\"lang\"}.",
        );
    };
    let address = state
        .identity
        .passwords
        .client_address(peer.map(|Extension(ConnectInfo(a))| a), &headers);
    let (app, user) = match check(&state, &body.app, &body.user, &body.pass, address).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    // The same app and user reuse their live session (and its id).
    let key = format!("erp:{}:{}", app.client_id, user.login);
    match enter(&state, key, &user, &app, Origin::ErpLogin).await {
        Ok(session) => {
            let mut r = Json(json!({ "authorization": format!("ErpSession {}", session.id) }))
                .into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(r) => *r,
    }
}

/// `POST /api/domain/logout`: 200, and the session stays (v27.1).
pub async fn logout() -> Response {
    StatusCode::OK.into_response()
}

//! The sign-in flow: authorize, the login and consent pages, and the code
//! they end in.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::cookies::{
    CSRF_COOKIE, SESSION_COOKIE, cookie, current_session, error_page, set_cookie, unavailable_page,
    with_cookie,
};
use super::pages;
use super::request::{
    AuthRequest, CODE_LIFETIME_S, Pending, REQUEST_LIFETIME_S, deliver, redirect_error, validate,
};
use super::state::is_sealed;
use crate::accounts::may_sign_in;
use crate::oauth::form::Form;
use crate::oauth::grants::{IdBinding, credential_hash, id_token, scopes_for_user};
use crate::passwords::PasswordOutcome;
use crate::service::Identity;
use erpgate_store::records::{AuthCode, Consent, GrantBasis, IdentitySession, User};
use erpgate_store::secrets::random_hex;

/// `GET /id/connect/authorize`.
pub async fn authorize(
    State(state): State<Identity>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request = match validate(&state, query.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let now = state.clock.now();
    let pending = Pending {
        request: Some(request.clone()),
        csrf: random_hex(32),
        created_at: now,
        signed_in: None,
        return_to: None,
    };
    if !request.prompt_login
        && let Some((session, user)) = current_session(&state, &headers).await
    {
        return after_sign_in(&state, None, pending, request, &session, &user).await;
    }
    if request.prompt_none {
        return redirect_error(
            &state,
            &request,
            "login_required",
            "the user is not signed in",
        );
    }
    let Some(id) = state.signin.seal(&pending) else {
        return unavailable_page();
    };
    let page = pages::login(&request.app_name, &id, &pending.csrf, "", None);
    let csrf_cookie = set_cookie(&state, CSRF_COOKIE, &pending.csrf, "Strict", None);
    with_cookie(pages::respond(StatusCode::OK, page), csrf_cookie)
}

/// How the login page names the profile pages.
const PROFILE_NAME: &str = "your ERP.net profile";

/// `GET /id/account/login[?return=…]`: signs in to the user's own profile
/// pages (PAT self-service), or to the installation link in `return`; any
/// user who may sign in at all.
pub async fn profile_login(State(state): State<Identity>, RawQuery(query): RawQuery) -> Response {
    let now = state.clock.now();
    let return_to = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(name, _)| name == "return")
        .and_then(|(_, path)| crate::install::return_path(&path));
    let pending = Pending {
        request: None,
        csrf: random_hex(32),
        created_at: now,
        signed_in: None,
        return_to,
    };
    let Some(id) = state.signin.seal(&pending) else {
        return unavailable_page();
    };
    let page = pages::login(PROFILE_NAME, &id, &pending.csrf, "", None);
    let csrf_cookie = set_cookie(&state, CSRF_COOKIE, &pending.csrf, "Strict", None);
    with_cookie(pages::respond(StatusCode::OK, page), csrf_cookie)
}

/// After sign-in (or SSO): the user-type gate, then consent, then the code.
/// `id` is the stored sign-in this continues, if any (consent pages store
/// theirs: by then someone has authenticated).
pub(crate) async fn after_sign_in(
    state: &Identity,
    id: Option<&str>,
    mut pending: Pending,
    request: AuthRequest,
    session: &IdentitySession,
    user: &User,
) -> Response {
    let app = match state.store.app(&request.client_id).await {
        Ok(Some(app)) if app.enabled => app,
        _ => {
            forget(state, id).await;
            return redirect_error(
                state,
                &request,
                "unauthorized_client",
                "the application is disabled",
            );
        }
    };
    if !may_sign_in(&app, user) {
        forget(state, id).await;
        return redirect_error(
            state,
            &request,
            "access_denied",
            "this application does not allow sign-in for your account type",
        );
    }
    let granted = scopes_for_user(user, &request.scopes);
    let consented = match state.store.consent(&user.login, &app.client_id).await {
        Ok(c) => c.is_some_and(|c| c.scopes.contains_all(&granted)),
        Err(e) => {
            tracing::error!(error = %e, "store failure reading consent");
            return redirect_error(state, &request, "temporarily_unavailable", "try again");
        }
    };
    if consented {
        forget(state, id).await;
        return issue_code(state, &request, user, session).await;
    }
    if request.prompt_none {
        forget(state, id).await;
        return redirect_error(
            state,
            &request,
            "consent_required",
            "consent has not been given",
        );
    }
    pending.signed_in = Some((user.login.clone(), session.sid.clone()));
    forget(state, id).await;
    let id = random_hex(16);
    if let Err(r) = pending.remember(&state.signin, &id).await {
        return *r;
    }
    let listed: Vec<&str> = granted.iter().collect();
    let page = pages::consent(&request.app_name, &user.login, &id, &pending.csrf, &listed);
    let csrf_cookie = set_cookie(state, CSRF_COOKIE, &pending.csrf, "Strict", None);
    with_cookie(pages::respond(StatusCode::OK, page), csrf_cookie)
}

async fn forget(state: &Identity, id: Option<&str>) {
    if let Some(id) = id {
        state.signin.forget(id).await;
    }
}

/// Stores a code and sends it (with an ID token for `code id_token`).
pub(crate) async fn issue_code(
    state: &Identity,
    request: &AuthRequest,
    user: &User,
    session: &IdentitySession,
) -> Response {
    let now = state.clock.now();
    let code = random_hex(32);
    let basis = GrantBasis {
        grant_id: random_hex(16),
        client_id: request.client_id.clone(),
        login: user.login.clone(),
        sid: session.sid.clone(),
        scopes: scopes_for_user(user, &request.scopes),
        auth_time: session.auth_time,
    };
    let record = AuthCode {
        hash: credential_hash(&code),
        basis: basis.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        state: request.state.clone(),
        created_at: now,
        expires_at: now + CODE_LIFETIME_S,
    };
    if let Err(e) = state.store.insert_auth_code(&record).await {
        tracing::error!(error = %e, "could not store an authorization code");
        return redirect_error(state, request, "temporarily_unavailable", "try again");
    }
    let mut fields = vec![("code", code.clone())];
    if request.hybrid {
        let binding = IdBinding {
            nonce: request.nonce.as_deref(),
            code: Some(&code),
            state: request.state.as_deref(),
            ..IdBinding::default()
        };
        match id_token(state, &user.login, &basis, &binding, now) {
            Ok(t) => fields.push(("id_token", t)),
            Err(_) => return redirect_error(state, request, "server_error", "could not sign"),
        }
    }
    fields.push(("scope", basis.scopes.to_string()));
    tracing::info!(client_id = %request.client_id, sub = %user.login, "issued an authorization code");
    deliver(state, request, fields)
}

/// The pending sign-in a form belongs to, with its CSRF token checked
/// against the form field and the cookie.
pub(crate) async fn pending_for(
    state: &Identity,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(String, Pending), Box<Response>> {
    let now = state.clock.now();
    let id = form.get("request").unwrap_or("");
    let found = if is_sealed(id) {
        // Sealed before anyone signed in: never a signed-in step, and only
        // for as long as a stored one would live.
        state
            .signin
            .open::<Pending>(id)
            .filter(|p| p.signed_in.is_none())
            .filter(|p| now < p.created_at.saturating_add(REQUEST_LIFETIME_S))
    } else {
        state.signin.get::<Pending>(id, now).await
    };
    let Some(pending) = found else {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request has expired or is unknown. Start again from the application.",
        )));
    };
    let expected = pending.csrf.as_bytes();
    let field_ok: bool = form
        .get("csrf")
        .unwrap_or("")
        .as_bytes()
        .ct_eq(expected)
        .into();
    let cookie_ok: bool = cookie(headers, CSRF_COOKIE)
        .unwrap_or("")
        .as_bytes()
        .ct_eq(expected)
        .into();
    if !(field_ok && cookie_ok) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form could not be verified (CSRF). Start again from the application.",
        )));
    }
    Ok((id.to_owned(), pending))
}

/// `POST /id/account/login`.
pub async fn login(
    State(state): State<Identity>,
    address: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let (id, pending) = match pending_for(&state, &headers, &form).await {
        Ok(p) => p,
        Err(response) => return *response,
    };
    let now = state.clock.now();
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("").to_owned();
    let client = state
        .passwords
        .client_address(address.map(|Extension(ConnectInfo(a))| a), &headers);
    let again = |status: StatusCode, message: &str| {
        pages::respond(
            status,
            pages::login(
                pending
                    .request
                    .as_ref()
                    .map_or(PROFILE_NAME, |r| r.app_name.as_str()),
                &id,
                &pending.csrf,
                &username,
                Some(message),
            ),
        )
    };
    let user = match state
        .passwords
        .check(&username, &password, client, now)
        .await
    {
        PasswordOutcome::Accepted(user) => user,
        PasswordOutcome::Refused => {
            metrics::counter!("erpgate_logins_total", "outcome" => "failed").increment(1);
            tracing::info!("failed sign-in");
            return again(
                StatusCode::UNAUTHORIZED,
                "The user name or password is incorrect.",
            );
        }
        PasswordOutcome::Throttled(retry_after) => {
            metrics::counter!("erpgate_logins_total", "outcome" => "throttled").increment(1);
            let mut r = again(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts. Wait a moment, then try again.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return r;
        }
        PasswordOutcome::Unavailable => {
            return again(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is busy. Try again in a moment.",
            );
        }
    };
    metrics::counter!("erpgate_logins_total", "outcome" => "ok").increment(1);
    // Same credentials again (prompt=login) keep the session; another user
    // gets a new one.
    let session = match current_session(&state, &headers).await {
        // The user authenticated again: auth_time is now (OIDC Core 2).
        Some((session, current)) if current.login == user.login => {
            if let Err(e) = state.store.reauthenticate_session(&session.sid, now).await {
                tracing::error!(error = %e, "could not record a sign-in");
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Try again in a moment.",
                );
            }
            IdentitySession {
                auth_time: now,
                ..session
            }
        }
        _ => {
            let session = IdentitySession {
                sid: random_hex(16),
                login: user.login.clone(),
                auth_time: now,
                created_at: now,
                ended_at: None,
            };
            if let Err(e) = state.store.insert_session(&session).await {
                tracing::error!(error = %e, "could not store a session");
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Try again in a moment.",
                );
            }
            session
        }
    };
    let session_cookie = set_cookie(
        &state,
        SESSION_COOKIE,
        &state.signin.session_cookie_value(&session.sid),
        "Lax",
        None,
    );
    let response = match pending.request.clone() {
        Some(request) => after_sign_in(&state, Some(&id), pending, request, &session, &user).await,
        None => {
            state.signin.forget(&id).await;
            let mut r = StatusCode::SEE_OTHER.into_response();
            let to = pending
                .return_to
                .as_deref()
                .and_then(|p| HeaderValue::from_str(p).ok())
                .unwrap_or(HeaderValue::from_static(super::profile::TOKENS_PATH));
            r.headers_mut().insert(header::LOCATION, to);
            r
        }
    };
    with_cookie(response, session_cookie)
}

/// `POST /id/connect/consent`.
pub async fn consent(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    let (id, pending) = match pending_for(&state, &headers, &form).await {
        Ok(p) => p,
        Err(response) => return *response,
    };
    let Some((login, sid)) = pending.signed_in.clone() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign in first",
            "This sign-in request has no signed-in user. Start again from the application.",
        );
    };
    // Single use, also when two replicas get the same form at once.
    if !state.signin.take(&id, state.clock.now()).await {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request has already been answered. Start again from the application.",
        );
    }
    let Some(request) = pending.request else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Nothing to consent to",
            "This sign-in request is not for an application.",
        );
    };
    if form.get("decision") != Some("allow") {
        return redirect_error(&state, &request, "access_denied", "the user denied access");
    }
    let (session, user) = match (
        state.store.session(&sid).await,
        state.store.user(&login).await,
    ) {
        (Ok(Some(s)), Ok(Some(u))) if state.session_live(&s, state.clock.now()) => (s, u),
        _ => return redirect_error(&state, &request, "login_required", "the session has ended"),
    };
    if form.get("remember") == Some("yes") {
        let mut scopes = scopes_for_user(&user, &request.scopes);
        if let Ok(Some(previous)) = state.store.consent(&login, &request.client_id).await {
            for s in previous.scopes.iter() {
                let _ = scopes.insert(s);
            }
        }
        let record = Consent {
            login: login.clone(),
            client_id: request.client_id.clone(),
            scopes,
            granted_at: state.clock.now(),
        };
        if let Err(e) = state.store.save_consent(&record).await {
            tracing::warn!(error = %e, "could not remember a consent");
        }
    }
    issue_code(&state, &request, &user, &session).await
}

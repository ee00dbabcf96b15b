//! Interactive sign-in: `/id/connect/authorize` (authorization code + PKCE,
//! hybrid `code id_token`), the login and consent pages, the SSO session
//! cookie, `/id/connect/userinfo` and `/id/connect/endsession`.
//!
//! Requests are validated before anyone is trusted: an unknown client or an
//! unregistered `redirect_uri` gets an error page, never a redirect; every
//! other error goes back to the client (RFC 6749 §4.1.2.1) with the RFC 9207
//! `iss` parameter. Forms carry a CSRF token that must also match a cookie
//! (double submit); failed logins are throttled per user and per address.

pub mod pages;
pub mod profile;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use erpgate::ScopeSet;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::keys::random_hex;
use crate::model::{AuthCode, ClientType, Consent, GrantBasis, IdentitySession, TrustedApp, User};
use crate::oauth::form::Form;
use crate::oauth::grants::{IdBinding, credential_hash, id_token, scopes_for_user};
use crate::oauth::token::IDENTITY_SCOPES;
use crate::state::AppState;
use crate::store::Store;

/// How long an authorization code is valid (ERP.net: "short-lived"; the
/// issue asks for 60–300 s).
pub const CODE_LIFETIME_S: u64 = 120;
/// How long a started sign-in (login and consent pages) stays usable.
pub const REQUEST_LIFETIME_S: u64 = 600;
/// Failed logins allowed per user name within the window.
pub const MAX_FAILURES_PER_USER: u32 = 5;
/// Failed logins allowed per client address within the window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// The throttling window.
pub const FAILURE_WINDOW_S: u64 = 900;
/// The SSO cookie.
pub const SESSION_COOKIE: &str = "erpgate.session";
/// The CSRF double-submit cookie.
pub const CSRF_COOKIE: &str = "erpgate.csrf";

/// How the response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Mode {
    Query,
    Fragment,
    FormPost,
}

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuthRequest {
    client_id: String,
    app_name: String,
    redirect_uri: String,
    hybrid: bool,
    mode: Mode,
    scopes: ScopeSet,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt_login: bool,
    prompt_none: bool,
}

/// A sign-in in progress, between its pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    /// The authorization request; `None` for a sign-in to the user's own
    /// profile pages.
    request: Option<AuthRequest>,
    csrf: String,
    created_at: u64,
    /// Set once the user has signed in: (login, sid).
    signed_in: Option<(String, String)>,
}

/// Sign-in state, kept in the store so that any replica can serve any page
/// of a sign-in: started sign-ins, failed-login counters and the key that
/// signs session cookies (made by the first host to start on the store).
pub struct SigninState {
    store: Arc<dyn Store>,
    cookie_key: RwLock<[u8; 32]>,
}

/// The store's name for the cookie key.
const COOKIE_KEY_NAME: &str = "sso-cookie-key";

impl SigninState {
    /// State in `store`, with a key of this process until [`Self::share_key`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        let mut cookie_key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut cookie_key);
        Self {
            store,
            cookie_key: RwLock::new(cookie_key),
        }
    }

    /// Adopts the cookie key every host on this store uses; the first to
    /// start stores its own.
    pub async fn share_key(&self) -> Result<(), crate::store::StoreError> {
        let mine = self.key().map(hex::encode).unwrap_or_default();
        let shared = self.store.shared_secret(COOKIE_KEY_NAME, &mine).await?;
        let key: [u8; 32] = hex::decode(&shared)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| crate::store::StoreError::Corrupt(COOKIE_KEY_NAME.into()))?;
        if let Ok(mut slot) = self.cookie_key.write() {
            *slot = key;
        }
        Ok(())
    }

    fn key(&self) -> Option<[u8; 32]> {
        self.cookie_key.read().ok().map(|k| *k)
    }

    /// Stores a sign-in between its pages; a page that cannot be stored is
    /// not shown.
    async fn remember(&self, id: &str, pending: &Pending) -> Result<(), Box<Response>> {
        let stored = match serde_json::to_string(pending) {
            Ok(json) => {
                let expires_at = pending.created_at.saturating_add(REQUEST_LIFETIME_S);
                self.store
                    .put_signin(id, &json, expires_at)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        stored.map_err(|e| {
            tracing::error!(error = %e, "could not store a sign-in");
            Box::new(unavailable_page())
        })
    }

    async fn get(&self, id: &str, now: u64) -> Option<Pending> {
        let json = self
            .store
            .signin(id, now)
            .await
            .map_err(|e| tracing::error!(error = %e, "could not read a sign-in"))
            .ok()??;
        serde_json::from_str(&json).ok()
    }

    /// Removes a sign-in; true for the one caller that removed it live.
    async fn take(&self, id: &str, now: u64) -> bool {
        match self.store.take_signin(id, now).await {
            Ok(taken) => taken.is_some(),
            Err(e) => {
                tracing::error!(error = %e, "could not remove a sign-in");
                false
            }
        }
    }

    async fn forget(&self, id: &str) {
        self.take(id, 0).await;
    }

    /// Whether `key` is over `limit` failures in the current window. A
    /// store that cannot answer counts as over: fail closed.
    pub(crate) async fn throttled(&self, key: &str, limit: u32, now: u64) -> bool {
        self.store
            .login_failures(key, now)
            .await
            .map_or(true, |n| n >= limit)
    }

    pub(crate) async fn fail(&self, key: &str, now: u64) {
        if let Err(e) = self
            .store
            .add_login_failure(key, now, FAILURE_WINDOW_S)
            .await
        {
            tracing::error!(error = %e, "could not count a failed login");
        }
    }

    pub(crate) async fn clear(&self, key: &str) {
        if let Err(e) = self.store.clear_login_failures(key).await {
            tracing::error!(error = %e, "could not clear failed logins");
        }
    }

    fn mac(&self, sid: &str) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key()?).ok()?;
        mac.update(sid.as_bytes());
        Some(mac)
    }

    /// `sid.mac`: the sid alone is in every token, so it cannot be the cookie.
    fn session_cookie_value(&self, sid: &str) -> String {
        let tag = self
            .mac(sid)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default();
        format!("{sid}.{tag}")
    }

    /// The CSRF token of the profile forms: bound to the session, stateless.
    pub(crate) fn profile_csrf(&self, sid: &str) -> String {
        self.mac(&format!("profile-csrf:{sid}"))
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    fn sid_from_cookie<'a>(&self, value: &'a str) -> Option<&'a str> {
        let (sid, tag) = value.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        self.mac(sid)?.verify_slice(&tag).ok()?;
        Some(sid)
    }
}

fn unavailable_page() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Try again in a moment.",
    )
}

/// One cookie's value from the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn set_cookie(
    state: &AppState,
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

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    pages::respond(status, pages::error(title, detail))
}

/// Sends the authorization response (success or error) to the client.
fn deliver(state: &AppState, request: &AuthRequest, mut fields: Vec<(&str, String)>) -> Response {
    if let Some(s) = &request.state {
        fields.push(("state", s.clone()));
    }
    fields.push(("iss", state.issuer.clone()));
    if request.mode == Mode::FormPost {
        return pages::form_post(&request.redirect_uri, &fields);
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let location = match request.mode {
        Mode::Fragment => format!("{}#{encoded}", request.redirect_uri),
        _ if request.redirect_uri.contains('?') => format!("{}&{encoded}", request.redirect_uri),
        _ => format!("{}?{encoded}", request.redirect_uri),
    };
    let mut response = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            response.headers_mut().insert(header::LOCATION, v);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The redirect address cannot be used.",
        ),
    }
}

fn redirect_error(
    state: &AppState,
    request: &AuthRequest,
    error: &str,
    description: &str,
) -> Response {
    deliver(
        state,
        request,
        vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ],
    )
}

/// Whether a PKCE challenge has the S256 shape: 43 base64url characters.
fn challenge_shape(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a user of this type may sign in to this app.
fn may_sign_in(app: &TrustedApp, user: &User) -> bool {
    match user.user_type.as_str() {
        "InternalUser" => app.internal_users_allowed,
        "ExternalCommunityUser" => app.community_users_allowed,
        _ => false,
    }
}

/// Validates the query of an authorization request. `Err` carries the
/// response: an error page before the client and redirect URI are trusted,
/// a redirect after.
async fn validate(state: &AppState, query: &str) -> Result<AuthRequest, Box<Response>> {
    let bad = |detail: &str| {
        Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            detail,
        )))
    };
    let params = match Form::parse(query.as_bytes()) {
        Ok(p) => p,
        Err(_) => return bad("The request repeats a parameter or is not valid UTF-8."),
    };
    let Some(client_id) = params.get("client_id") else {
        return bad("The request does not name an application (client_id).");
    };
    let app = match state.store.app(client_id).await {
        Ok(Some(app)) if app.enabled => app,
        Ok(_) => return bad("The application is unknown or disabled."),
        Err(e) => {
            tracing::error!(error = %e, "store failure at authorize");
            return Err(Box::new(error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Try again in a moment.",
            )));
        }
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return bad("The request has no redirect_uri.");
    };
    // Exact, case-sensitive match against the registered list; a fragment
    // can never be a redirect target.
    if redirect_uri.contains('#') || !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return bad("The redirect_uri is not registered for this application.");
    }
    let mut types: Vec<&str> = params
        .get("response_type")
        .unwrap_or("")
        .split(' ')
        .filter(|t| !t.is_empty())
        .collect();
    types.sort_unstable();
    let hybrid = types.as_slice() == ["code", "id_token"];
    let mode = match params.get("response_mode") {
        None if hybrid => Mode::Fragment,
        None | Some("query") => Mode::Query,
        Some("fragment") => Mode::Fragment,
        Some("form_post") => Mode::FormPost,
        Some(_) => Mode::Query,
    };
    let mut request = AuthRequest {
        client_id: app.client_id.clone(),
        app_name: app.name.clone(),
        redirect_uri: redirect_uri.to_owned(),
        hybrid,
        mode,
        scopes: ScopeSet::new(),
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: params.get("code_challenge").map(str::to_owned),
        prompt_login: false,
        prompt_none: false,
    };
    let fail = |request: &AuthRequest, error: &str, description: &str| {
        Err(Box::new(redirect_error(state, request, error, description)))
    };
    if !matches!(types.as_slice(), ["code"] | ["code", "id_token"]) {
        return fail(
            &request,
            "unsupported_response_type",
            "response_type must be code or code id_token",
        );
    }
    if let Some(m) = params.get("response_mode")
        && !matches!(m, "query" | "fragment" | "form_post")
    {
        return fail(&request, "invalid_request", "unknown response_mode");
    }
    if hybrid && mode == Mode::Query {
        return fail(
            &request,
            "invalid_request",
            "an ID token is never sent in a query string",
        );
    }
    // ERP.net: no `scope` means every scope configured on the app.
    let scope = params
        .get("scope")
        .map_or_else(|| app.scope.to_string(), str::to_owned);
    let Ok(scopes) = ScopeSet::parse(&scope) else {
        return fail(
            &request,
            "invalid_scope",
            "scope is not a list of scope tokens",
        );
    };
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !IDENTITY_SCOPES.contains(s) && !app.scope.contains(s))
    {
        return fail(
            &request,
            "invalid_scope",
            &format!("Invalid scope: {unknown}"),
        );
    }
    request.scopes = scopes;
    if hybrid && (!request.scopes.contains("openid") || request.nonce.is_none()) {
        return fail(
            &request,
            "invalid_request",
            "code id_token needs the openid scope and a nonce",
        );
    }
    match (params.get("code_challenge_method"), &request.code_challenge) {
        (Some(m), _) if m != "S256" => {
            return fail(
                &request,
                "invalid_request",
                "code_challenge_method must be S256",
            );
        }
        (Some(_), None) => {
            return fail(
                &request,
                "invalid_request",
                "code_challenge_method without code_challenge",
            );
        }
        (None, Some(_)) => {
            return fail(
                &request,
                "invalid_request",
                "code_challenge_method must be S256 (plain is not supported)",
            );
        }
        _ => {}
    }
    if let Some(challenge) = &request.code_challenge
        && !challenge_shape(challenge)
    {
        return fail(
            &request,
            "invalid_request",
            "code_challenge must be 43 base64url characters",
        );
    }
    if app.client_type == ClientType::Public && request.code_challenge.is_none() {
        return fail(
            &request,
            "invalid_request",
            "public clients must use PKCE (code_challenge with S256)",
        );
    }
    let prompts: Vec<&str> = params.get("prompt").unwrap_or("").split(' ').collect();
    request.prompt_login = prompts.contains(&"login");
    request.prompt_none = prompts.contains(&"none");
    if request.prompt_none && prompts.iter().any(|p| !p.is_empty() && *p != "none") {
        return fail(
            &request,
            "invalid_request",
            "prompt=none cannot be combined",
        );
    }
    if !app.internal_users_allowed && !app.community_users_allowed {
        return fail(
            &request,
            "unauthorized_client",
            "the application does not allow interactive sign-in",
        );
    }
    Ok(request)
}

/// The signed-in session behind the cookie, if it is live.
pub(crate) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<(IdentitySession, User)> {
    let value = cookie(headers, SESSION_COOKIE)?;
    let sid = state.signin.sid_from_cookie(value)?;
    let session = state.store.session(sid).await.ok()??;
    if session.ended_at.is_some() {
        return None;
    }
    let user = state.store.user(&session.login).await.ok()??;
    Some((session, user))
}

/// `GET /id/connect/authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request = match validate(&state, query.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let now = state.clock.now();
    let id = random_hex(16);
    let pending = Pending {
        request: Some(request.clone()),
        csrf: random_hex(32),
        created_at: now,
        signed_in: None,
    };
    if !request.prompt_login
        && let Some((session, user)) = current_session(&state, &headers).await
    {
        return after_sign_in(&state, &id, pending, request, &session, &user).await;
    }
    if request.prompt_none {
        return redirect_error(
            &state,
            &request,
            "login_required",
            "the user is not signed in",
        );
    }
    if let Err(r) = state.signin.remember(&id, &pending).await {
        return *r;
    }
    let page = pages::login(&request.app_name, &id, &pending.csrf, "", None);
    let csrf_cookie = set_cookie(&state, CSRF_COOKIE, &pending.csrf, "Strict", None);
    with_cookie(pages::respond(StatusCode::OK, page), csrf_cookie)
}

/// How the login page names the profile pages.
const PROFILE_NAME: &str = "your ERP.net profile";

/// `GET /id/account/login`: signs in to the user's own profile pages (PAT
/// self-service); any user who may sign in at all.
pub async fn profile_login(State(state): State<AppState>) -> Response {
    let now = state.clock.now();
    let id = random_hex(16);
    let pending = Pending {
        request: None,
        csrf: random_hex(32),
        created_at: now,
        signed_in: None,
    };
    if let Err(r) = state.signin.remember(&id, &pending).await {
        return *r;
    }
    let page = pages::login(PROFILE_NAME, &id, &pending.csrf, "", None);
    let csrf_cookie = set_cookie(&state, CSRF_COOKIE, &pending.csrf, "Strict", None);
    with_cookie(pages::respond(StatusCode::OK, page), csrf_cookie)
}

/// After sign-in (or SSO): the user-type gate, then consent, then the code.
async fn after_sign_in(
    state: &AppState,
    id: &str,
    mut pending: Pending,
    request: AuthRequest,
    session: &IdentitySession,
    user: &User,
) -> Response {
    let app = match state.store.app(&request.client_id).await {
        Ok(Some(app)) if app.enabled => app,
        _ => {
            state.signin.forget(id).await;
            return redirect_error(
                state,
                &request,
                "unauthorized_client",
                "the application is disabled",
            );
        }
    };
    if !may_sign_in(&app, user) {
        state.signin.forget(id).await;
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
        state.signin.forget(id).await;
        return issue_code(state, &request, user, session).await;
    }
    if request.prompt_none {
        state.signin.forget(id).await;
        return redirect_error(
            state,
            &request,
            "consent_required",
            "consent has not been given",
        );
    }
    pending.signed_in = Some((user.login.clone(), session.sid.clone()));
    if let Err(r) = state.signin.remember(id, &pending).await {
        return *r;
    }
    let listed: Vec<&str> = granted.iter().collect();
    let page = pages::consent(&request.app_name, &user.login, id, &pending.csrf, &listed);
    let csrf_cookie = set_cookie(state, CSRF_COOKIE, &pending.csrf, "Strict", None);
    with_cookie(pages::respond(StatusCode::OK, page), csrf_cookie)
}

/// Stores a code and sends it (with an ID token for `code id_token`).
async fn issue_code(
    state: &AppState,
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
async fn pending_for(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(String, Pending), Box<Response>> {
    let now = state.clock.now();
    let id = form.get("request").unwrap_or("");
    let Some(pending) = state.signin.get(id, now).await else {
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

/// Verifies a password against an Argon2id hash off the async threads.
pub(crate) async fn password_ok(hash: Option<String>, password: String) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    tokio::task::spawn_blocking(move || {
        // A missing hash still costs one verification, so unknown users and
        // wrong passwords take the same time.
        let stored = hash.unwrap_or_else(dummy_password_hash);
        PasswordHash::new(&stored)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// An Argon2id hash of a random password nobody knows, made once.
fn dummy_password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::hash_password(&random_hex(32)).unwrap_or_default())
        .clone()
}

/// `POST /id/account/login`.
pub async fn login(
    State(state): State<AppState>,
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
    let user_key = format!("user:{}", username.to_lowercase());
    let address_key = address.map(|Extension(ConnectInfo(a))| format!("addr:{}", a.ip()));
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
    let address_throttled = match &address_key {
        Some(k) => {
            state
                .signin
                .throttled(k, MAX_FAILURES_PER_ADDRESS, now)
                .await
        }
        None => false,
    };
    if address_throttled
        || state
            .signin
            .throttled(&user_key, MAX_FAILURES_PER_USER, now)
            .await
    {
        metrics::counter!("erpgate_logins_total", "outcome" => "throttled").increment(1);
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-in attempts. Wait a few minutes, then try again.",
        );
    }
    let user = state.store.user(&username).await.ok().flatten();
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = password_ok(hash, password).await;
    let Some(user) = user.filter(|_| verified) else {
        state.signin.fail(&user_key, now).await;
        if let Some(k) = &address_key {
            state.signin.fail(k, now).await;
        }
        metrics::counter!("erpgate_logins_total", "outcome" => "failed").increment(1);
        tracing::info!("failed sign-in");
        return again(
            StatusCode::UNAUTHORIZED,
            "The user name or password is incorrect.",
        );
    };
    state.signin.clear(&user_key).await;
    metrics::counter!("erpgate_logins_total", "outcome" => "ok").increment(1);
    // Same credentials again (prompt=login) keep the session; another user
    // gets a new one.
    let session = match current_session(&state, &headers).await {
        Some((session, current)) if current.login == user.login => session,
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
        Some(request) => after_sign_in(&state, &id, pending, request, &session, &user).await,
        None => {
            state.signin.forget(&id).await;
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_static(profile::TOKENS_PATH),
            );
            r
        }
    };
    with_cookie(response, session_cookie)
}

/// `POST /id/connect/consent`.
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
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
        (Ok(Some(s)), Ok(Some(u))) if s.ended_at.is_none() => (s, u),
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

/// `GET /id/connect/endsession`: ends the identity session (and its refresh
/// tokens; the edge learns of it through the revocation feed), then returns
/// to the app only if `post_logout_redirect_uri` is one of its registered
/// logout URIs.
pub async fn endsession(
    State(state): State<AppState>,
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
        .and_then(|t| crate::oauth::introspect::verify_own(&state, t, "JWT", None));
    let hint_client = hint
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let client = params.get("client_id").map(str::to_owned).or(hint_client);
    let cookie_sid = cookie(&headers, SESSION_COOKIE)
        .and_then(|v| state.signin.sid_from_cookie(v))
        .map(str::to_owned);
    if let Some(sid) = &cookie_sid {
        let event_expiry = now + state.config.instance.access_token_lifetime_s;
        // The ERP session of that sid ends too, freeing its license at once.
        if let Err(e) = state.api.sessions.close(&format!("sid:{sid}")).await {
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

/// `GET|POST /id/connect/userinfo` with a user access token carrying `openid`.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let refuse = |error: &str| {
        let mut r = (StatusCode::UNAUTHORIZED, Json(json!({ "error": error }))).into_response();
        if let Ok(v) =
            HeaderValue::from_str(&format!("Bearer realm=\"ERP.net\", error=\"{error}\""))
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return refuse("invalid_request");
    };
    let now = state.clock.now();
    let Some(claims) = crate::oauth::introspect::verify_own(&state, token, "at+jwt", Some(now))
    else {
        return refuse("invalid_token");
    };
    let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
    if state.store.jti_revoked(jti).await.unwrap_or(true) {
        return refuse("invalid_token");
    }
    let scopes =
        ScopeSet::from_json(claims.get("scope").unwrap_or(&Value::Null)).unwrap_or_default();
    let Some(login) = claims.get("sub").and_then(Value::as_str) else {
        return refuse("invalid_token");
    };
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

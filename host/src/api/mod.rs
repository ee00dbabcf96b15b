//! The emulated ERP API, served beside `/id`: a small Domain API under
//! `/api/domain/odata/`, `GET /profile/me`, ErpLogin, and the license table.
//!
//! Every request is decided by the core engine natively, under
//! `policies/erpnet.json` with this host's issuer, so the API is correct with
//! or without the gateway in front; it never trusts `x-erp-*` headers. The
//! engine's outbound calls (introspection, JWKS, revocation feed) are answered
//! in-process. An allowed credential then enters an ERP session (a license
//! slot); legacy Basic and `ErpSession` credentials, which the policy passes
//! through, are checked here.

pub mod legacy;
pub mod odata;
pub mod sessions;

use std::sync::Mutex;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use erpgate::engine::Purpose;
use erpgate::{Decision, Engine, HttpCall, Outcome, Policy, Principal, Step, Time, TokenKind};
use serde_json::{Value, json};

use self::sessions::{ApiSession, Identity, License, Origin, SessionError, Sessions};
use crate::oauth::form::Form;
use crate::state::AppState;
use crate::store::Store;
use std::sync::Arc;

/// The engine and its state, for this host's issuer.
pub struct Api {
    engine: Result<Engine, String>,
    state: Mutex<Option<erpgate::State>>,
    /// The license table.
    pub sessions: Sessions,
    /// Legacy credentials already checked with Argon2 (digests only).
    pub verified_passwords: VerifiedPasswords,
}

/// Digests of (app, login, password, stored hash) whose Argon2 check passed,
/// so legacy Basic, which sends the password on every call, pays for Argon2
/// once. Bounded: when full it starts over.
#[derive(Default)]
pub struct VerifiedPasswords(Mutex<std::collections::HashSet<[u8; 32]>>);

impl VerifiedPasswords {
    /// Digests kept at most.
    const MAX: usize = 4096;

    fn contains(&self, digest: &[u8; 32]) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(digest))
    }

    fn insert(&self, digest: [u8; 32]) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= Self::MAX {
                set.clear();
            }
            set.insert(digest);
        }
    }
}

impl Api {
    /// The API for a host with this issuer and license configuration.
    pub fn new(issuer: &str, license: License, store: Arc<dyn Store>) -> Self {
        let mut policy: Value = serde_json::from_str(include_str!("../../../policies/erpnet.json"))
            .unwrap_or(Value::Null);
        if let Some(first) = policy
            .pointer_mut("/issuers/0")
            .and_then(Value::as_object_mut)
        {
            first.insert("issuer".into(), json!(issuer));
            // The JWKS is answered in-process, so an unknown kid (a key
            // another replica rotated in) may refetch at once.
            first.insert("jwks_cooldown_s".into(), json!(1));
        }
        let engine = Policy::compile(&policy.to_string())
            .map(Engine::new)
            .map_err(|e| e.to_string());
        let state = engine.as_ref().ok().map(Engine::new_state);
        Self {
            engine,
            state: Mutex::new(state),
            sessions: Sessions::new(license, store),
            verified_passwords: VerifiedPasswords::default(),
        }
    }
}

/// Background work of the API's engine: JWKS refreshes and the revocation
/// feed, answered in-process.
pub async fn background(state: &AppState) {
    let Ok(engine) = state.api.engine.as_ref() else {
        return;
    };
    let now_ms = state.clock.now_ms();
    let due = match state.api.state.lock() {
        Ok(mut guard) => match guard.as_mut() {
            Some(s) => engine.due_calls(Time::from_millis(now_ms), s),
            None => return,
        },
        Err(_) => return,
    };
    for job in due {
        let outcome = perform(state, &job.call, now_ms / 1000).await;
        if let Ok(mut guard) = state.api.state.lock()
            && let Some(s) = guard.as_mut()
        {
            engine.complete(job.job, outcome, Time::from_millis(now_ms), s);
        }
    }
}

/// Who an API request runs as, once authenticated and in a session.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A public route (login, logout, discovery).
    Public,
    /// A verified token.
    Token(Box<Principal>, ApiSession),
    /// Legacy Basic or `ErpSession`.
    Legacy(ApiSession),
}

/// ERP.net's business-error body: `{message, code, type, info,
/// messageFormat, parameters}`.
pub fn erp_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (
        status,
        Json(json!({
            "message": message,
            "code": code,
            "type": code,
            "info": null,
            "messageFormat": message,
            "parameters": [],
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `MaximumLicenseCountExceeded`, as ERP.net reports business errors (500).
pub fn license_exceeded() -> Response {
    erp_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "MaximumLicenseCountExceeded",
        "The maximum number of licensed sessions has been reached. Try again when a session closes.",
    )
}

/// The answer when no session could open.
pub fn session_refused(e: SessionError) -> Response {
    match e {
        SessionError::MaximumLicenseCountExceeded => license_exceeded(),
        SessionError::Unavailable => unavailable(),
    }
}

fn unavailable() -> Response {
    erp_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The API is temporarily unavailable.",
    )
}

fn json_outcome<T: serde::Serialize>(value: &T) -> Outcome {
    match serde_json::to_vec(value) {
        Ok(body) => Outcome::Response { status: 200, body },
        Err(_) => Outcome::Failed,
    }
}

/// Answers one engine call in-process.
async fn perform(state: &AppState, call: &HttpCall, now: u64) -> Outcome {
    match call.purpose {
        Purpose::Jwks => json_outcome(&state.keys.jwks()),
        Purpose::Introspection => {
            let token = Form::parse(&call.body)
                .ok()
                .and_then(|f| f.get("token").map(str::to_owned));
            let Some(token) = token else {
                return Outcome::Failed;
            };
            match crate::oauth::introspect::introspect_token(state, &token, now).await {
                Ok(reply) => json_outcome(&reply),
                Err(_) => Outcome::Failed,
            }
        }
        Purpose::RevocationFeed => {
            let query = call.path.split_once('?').map_or("", |(_, q)| q);
            let cursor = Form::parse(query.as_bytes())
                .ok()
                .and_then(|f| f.get("cursor").and_then(|c| c.parse::<u64>().ok()))
                .unwrap_or(0);
            match crate::oauth::introspect::feed_page(state, cursor).await {
                Ok(page) => json_outcome(&page),
                Err(_) => Outcome::Failed,
            }
        }
    }
}

/// Runs the engine on a request, answering its calls in-process.
async fn decide(
    state: &AppState,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
) -> Option<Decision> {
    let engine = state.api.engine.as_ref().ok()?;
    let now = state.clock.now_ms();
    let request = erpgate::Request::new(method, path, headers);
    let mut step = {
        let mut guard = state.api.state.lock().ok()?;
        engine.start(&request, Time::from_millis(now), guard.as_mut()?)
    };
    loop {
        step = match step {
            Step::Decided(decision) => return Some(decision),
            Step::Call { call, pending } => {
                let outcome = perform(state, &call, now / 1000).await;
                let mut guard = state.api.state.lock().ok()?;
                engine.resume(pending, outcome, Time::from_millis(now), guard.as_mut()?)
            }
            // No host crypto or single flight is declared here.
            Step::Verify { pending, .. } | Step::Wait { pending, .. } => {
                let mut guard = state.api.state.lock().ok()?;
                engine.resume(
                    pending,
                    Outcome::Failed,
                    Time::from_millis(now),
                    guard.as_mut()?,
                )
            }
        };
    }
}

/// The session key and origin of a verified token: `sid` for user tokens
/// (a refresh keeps it), the token id (`jti`) otherwise. This host puts a
/// `jti` in every token it issues, reference tokens included (their public
/// id, through introspection); a token without one keys by kind and subject.
fn token_identity(principal: &Principal) -> Identity {
    let (key, origin) = match principal.kind {
        TokenKind::User => (
            principal.sid.as_ref().map(|s| format!("sid:{s}")),
            Origin::User,
        ),
        TokenKind::Service => (None, Origin::Service),
        TokenKind::Pat => (None, Origin::Pat),
        TokenKind::Sat => (None, Origin::Sat),
    };
    let key = key
        .or_else(|| principal.jti.as_ref().map(|j| format!("jti:{j}")))
        .unwrap_or_else(|| format!("{}:{}", principal.kind.as_str(), principal.subject));
    Identity {
        key,
        login: principal.subject.clone(),
        client_id: principal.client_id.clone(),
        origin,
    }
}

/// Authenticates every API request (the middleware of the API routes).
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let owned: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let headers: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let Some(decision) = decide(&state, &method, &path, &headers).await else {
        return unavailable();
    };
    let now = state.clock.now();
    let caller = match decision {
        Decision::Deny(denial) => {
            let engine_policy = match &state.api.engine {
                Ok(engine) => engine.policy(),
                Err(_) => return unavailable(),
            };
            let r = denial.response(engine_policy);
            let mut response = (
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN),
                r.body,
            )
                .into_response();
            for (n, v) in r.headers {
                if let (Ok(n), Ok(v)) = (
                    header::HeaderName::from_bytes(n.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    response.headers_mut().insert(n, v);
                }
            }
            return response;
        }
        Decision::Allow(allow) => match allow.principal {
            Some(principal) => {
                let who = token_identity(&principal);
                // External (community) users never consume licenses.
                let session = if principal.user_type.as_deref() == Some("ExternalCommunityUser") {
                    Ok(who.session(now))
                } else {
                    state.api.sessions.enter(&who, now).await
                };
                match session {
                    Ok(session) => Caller::Token(Box::new(principal), session),
                    Err(e) => return session_refused(e),
                }
            }
            None => match legacy::authenticate(&state, request.headers(), now).await {
                Ok(Some(session)) => Caller::Legacy(session),
                Ok(None) => Caller::Public,
                Err(response) => return *response,
            },
        },
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// `GET /profile/me`: user tokens and PATs only (the policy refuses service
/// tokens and SATs; legacy credentials are refused here).
pub async fn profile_me(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let Some(axum::Extension(Caller::Token(principal, _))) = caller else {
        return erp_error(
            StatusCode::FORBIDDEN,
            "UnsupportedCredential",
            "The profile API accepts user access tokens and personal access tokens only.",
        );
    };
    let user = match state.store.user(&principal.subject).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return erp_error(
                StatusCode::NOT_FOUND,
                "UserNotFound",
                "The user no longer exists.",
            );
        }
        Err(_) => return unavailable(),
    };
    let mut r = Json(json!({
        "Id": user.id,
        "Login": user.login,
        "Name": user.name,
        "Email": user.email,
        "UserType": user.user_type,
        "IsAdmin": user.is_admin,
        "Locale": user.locale,
        "Database": state.config.instance.db,
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /admin/sessions`: the license table.
pub async fn admin_sessions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = crate::endpoints::admin_guard(&state, &headers) {
        return *r;
    }
    match state.api.sessions.table(state.clock.now()).await {
        Ok(table) => Json(table).into_response(),
        Err(e) => session_refused(e),
    }
}

/// `DELETE /admin/sessions/{id}`: ends a session; its slot is free at once.
pub async fn admin_end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(r) = crate::endpoints::admin_guard(&state, &headers) {
        return *r;
    }
    match state.api.sessions.close(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response(),
        Err(e) => session_refused(e),
    }
}

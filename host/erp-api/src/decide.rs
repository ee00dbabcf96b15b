//! Deciding API requests with the core engine, its outbound calls answered
//! in-process by the identity host, and the session each allowed caller
//! enters.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use erpgate::engine::Purpose;
use erpgate::{Decision, HttpCall, Outcome, Principal, Step, Time, TokenKind};
use erpgate_identity::oauth::form::Form;

use crate::errors::*;
use crate::legacy;
use crate::sessions::*;
use crate::state::*;

/// Background work of the API's engine: JWKS refreshes and the revocation
/// feed, answered in-process.
pub async fn background(state: &ErpApi) {
    let Ok(engine) = state.api.engine.as_ref() else {
        return;
    };
    let now_ms = state.identity.clock.now_ms();
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
pub enum ApiCaller {
    /// A public route (login, logout, discovery).
    Public,
    /// A verified token.
    Token(Box<Principal>, ApiSession),
    /// Legacy Basic or `ErpSession`.
    Legacy(ApiSession),
}

pub(crate) fn json_outcome<T: serde::Serialize>(value: &T) -> Outcome {
    match serde_json::to_vec(value) {
        Ok(body) => Outcome::Response { status: 200, body },
        Err(_) => Outcome::Failed,
    }
}

/// Answers one engine call in-process.
pub(crate) async fn perform(state: &ErpApi, call: &HttpCall, now: u64) -> Outcome {
    match call.purpose {
        Purpose::Jwks => json_outcome(&state.identity.keys.jwks()),
        Purpose::Introspection => {
            let token = Form::parse(&call.body)
                .ok()
                .and_then(|f| f.get("token").map(str::to_owned));
            let Some(token) = token else {
                return Outcome::Failed;
            };
            match state.identity.introspect(&token, now).await {
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
            match state.identity.revocation_feed(cursor).await {
                Ok(page) => json_outcome(&page),
                Err(_) => Outcome::Failed,
            }
        }
    }
}

/// Runs the engine on a request (with its body, when the engine asked for
/// it), answering its calls in-process, and writes the decision log line
/// to stdout. The API always enforces: a policy in shadow mode gets its
/// would-be denial applied here.
pub(crate) async fn decide(
    state: &ErpApi,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Option<&[u8]>,
) -> Option<Decision> {
    let mut spent = std::time::Duration::ZERO;
    let decision = run_engine(state, method, path, headers, body, &mut spent).await?;
    let now = Time::from_millis(state.identity.clock.now_ms());
    let micros = u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
    if let Some(record) = erpgate::DecisionLog::of(&decision, now, Some(micros)) {
        println!("{}", record.line());
    }
    Some(match decision {
        Decision::Allow(mut allow) => match allow.would_deny.take() {
            Some(denial) => Decision::Deny(denial),
            None => Decision::Allow(allow),
        },
        denied => denied,
    })
}

/// The engine's decision; `spent` adds up the time inside the engine.
async fn run_engine(
    state: &ErpApi,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Option<&[u8]>,
    spent: &mut std::time::Duration,
) -> Option<Decision> {
    let engine = state.api.engine.as_ref().ok()?;
    let now = state.identity.clock.now_ms();
    let mut request = erpgate::Request::new(method, path, headers);
    // Where the client sent the request, as DPoP proofs name it: this
    // host's scheme, and the authority the request carries (the gateway's
    // when it came through one, which keeps the client's `Host`).
    let scheme = state
        .identity
        .public_url
        .split_once("://")
        .map_or("http", |(scheme, _)| scheme);
    if let Some(host) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
    {
        request = request.with_target(scheme, host);
    }
    if let Some(body) = body {
        request = request.with_body(body);
    }
    let mut step = {
        let mut guard = state.api.state.lock().ok()?;
        let started = std::time::Instant::now();
        let step = engine.start(&request, Time::from_millis(now), guard.as_mut()?);
        *spent += started.elapsed();
        step
    };
    loop {
        let (pending, outcome) = match step {
            Step::Decided(decision) => return Some(decision),
            Step::Call { call, pending } => (pending, perform(state, &call, now / 1000).await),
            // No host crypto or single flight is declared here.
            Step::Verify { pending, .. } | Step::Wait { pending, .. } => (pending, Outcome::Failed),
        };
        let mut guard = state.api.state.lock().ok()?;
        let started = std::time::Instant::now();
        step = engine.resume(pending, outcome, Time::from_millis(now), guard.as_mut()?);
        *spent += started.elapsed();
    }
}

/// A response the engine made, as is: a denial or the protected-resource
/// metadata.
fn local_response(r: erpgate::decision::Response) -> Response {
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
    response
}

/// The session key and origin of a verified token: `sid` for user tokens
/// (a refresh keeps it), the token id (`jti`) otherwise. This host puts a
/// `jti` in every token it issues, reference tokens included (their public
/// id, through introspection); a token without one keys by kind and subject.
pub(crate) fn token_holder(principal: &Principal) -> Holder {
    let (key, origin) = match principal.kind {
        TokenKind::User => (principal.sid().map(|s| format!("sid:{s}")), Origin::User),
        TokenKind::Service => (None, Origin::Service),
        TokenKind::Pat => (None, Origin::Pat),
        TokenKind::Sat => (None, Origin::Sat),
    };
    let key = key
        .or_else(|| principal.jti().map(|j| format!("jti:{j}")))
        .unwrap_or_else(|| format!("{}:{}", principal.kind.as_str(), principal.subject()));
    Holder {
        key,
        login: principal.subject().to_owned(),
        client_id: principal.client_id().map(String::from),
        origin,
    }
}

/// Authenticates every API request (the middleware of the API routes).
pub async fn authenticate(
    State(state): State<ErpApi>,
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
    // An OData $batch is decided on its inner requests: the body first,
    // at most one byte past what the engine inspects.
    let limit = match &state.api.engine {
        Ok(engine) => engine.body_limit(&erpgate::Request::new(&method, &path, &headers)),
        Err(_) => return unavailable(),
    };
    let mut body = None;
    if let Some(limit) = limit {
        let (parts, stream) = request.into_parts();
        let bytes = match axum::body::to_bytes(stream, limit.saturating_add(1)).await {
            Ok(bytes) => bytes,
            // Past the limit: one byte more than the engine inspects.
            Err(_) => axum::body::Bytes::from(vec![0u8; limit.saturating_add(1)]),
        };
        request = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        body = Some(bytes);
    }
    let Some(decision) = decide(&state, &method, &path, &headers, body.as_deref()).await else {
        return unavailable();
    };
    let now = state.identity.clock.now();
    let caller = match decision {
        Decision::Deny(denial) => {
            let engine_policy = match &state.api.engine {
                Ok(engine) => engine.policy(),
                Err(_) => return unavailable(),
            };
            return local_response(denial.response(engine_policy));
        }
        Decision::Answer(answer) => return local_response(answer),
        Decision::Allow(allow) => match allow.principal().cloned() {
            Some(principal) => {
                let who = token_holder(&principal);
                // External (community) users never consume licenses.
                let session = if principal.user_type() == Some("ExternalCommunityUser") {
                    Ok(who.session(now))
                } else {
                    state.api.sessions.enter(&who, now).await
                };
                match session {
                    Ok(session) => ApiCaller::Token(Box::new(principal), session),
                    Err(e) => return session_refused(e),
                }
            }
            None => match legacy::authenticate(
                &state,
                request.headers(),
                request
                    .extensions()
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0),
                now,
            )
            .await
            {
                Ok(Some(session)) => ApiCaller::Legacy(session),
                Ok(None) => ApiCaller::Public,
                Err(response) => return *response,
            },
        },
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

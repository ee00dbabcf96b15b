//! `/id/connect/introspect` (RFC 7662), `/id/connect/revocation` (RFC 7009)
//! and the revocation feed the edge polls.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use erpgate::cache::TokenHash;
use erpgate::credential::is_reference_token;
use erpgate::introspection::{Audience, Confirmation, IntrospectionResponse};
use erpgate::jwt::{ClaimRules, principal_from_claims};
use erpgate::revocation::RevocationFeedPage;
use erpgate::{Principal, TokenKind};
use serde_json::{Map, Value};

use super::client_auth::{IntrospectionCaller, authenticate_app, authenticate_caller, presented};
use super::error::OAuthError;
use super::form::Form;
use super::grants::credential_hash;
use crate::accounts::may_use_api;
use crate::service::Identity;
use erpgate_store::records::{ClientType, GrantKind, ReferenceTokenPolicy};

/// Our own access token, verified: signature by a published key, our
/// issuer, `typ at+jwt`, then its claims read by the core's own rules (the
/// edge's reading: `exp`, `nbf`, `iat`, the `{issuer}/resources` audience),
/// so the host and the edge derive one principal from one token alike.
/// `accept_bound`: whether a token bound to a DPoP key passes (introspection
/// and revocation, which the token's holder does not present it to; never
/// a bearer presentation).
pub fn verify_own_access_token(
    state: &Identity,
    token: &str,
    now: u64,
    accept_bound: bool,
) -> Option<(Map<String, Value>, Principal)> {
    let claims = verify_own(state, token, "at+jwt")?;
    let rules = ClaimRules {
        audiences: vec![format!("{}/resources", state.issuer)],
        leeway_s: 0,
        max_token_age_s: None,
    };
    let principal = principal_from_claims(&claims, &rules, now)
        .ok()
        .filter(|p| accept_bound || p.jkt().is_none())?;
    Some((claims, principal))
}

/// The claims of a JWT we signed, of type `typ`: signature by a published
/// key and our issuer; no time checks (an `id_token_hint` may have expired).
pub fn verify_own(state: &Identity, token: &str, typ: &str) -> Option<Map<String, Value>> {
    let decoded = erpgate::jwt::decode(token, &erpgate::jwt::Limits::default()).ok()?;
    if !erpgate::jwt::typ_matches(decoded.header.typ.as_deref(), typ) {
        return None;
    }
    if erpgate::jwt::unverified_issuer(&decoded.claims).ok()? != state.issuer {
        return None;
    }
    let keys = state.keys.key_set();
    let key = keys.select(decoded.header.kid.as_deref())?;
    (key.algorithm() == decoded.header.alg
        && key.verify(decoded.signing_input.as_bytes(), &decoded.signature))
    .then_some(decoded.claims)
}

/// Whether the identity session a token names (if any) is still open: a
/// token of an ended session (sign-out, password change) is not active.
pub async fn session_live(
    state: &Identity,
    sid: Option<&str>,
) -> Result<bool, erpgate_store::StoreError> {
    let Some(sid) = sid else {
        return Ok(true);
    };
    let now = state.clock.now();
    Ok(state
        .store
        .session(sid)
        .await?
        .is_some_and(|s| state.session_live(&s, now)))
}

fn claim_str(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

async fn introspect_reference(
    state: &Identity,
    token: &str,
    now: u64,
) -> Result<IntrospectionResponse, OAuthError> {
    let hash = TokenHash::of(token).to_hex();
    let Some(ctx) = state.store.reference_token_context(&hash).await? else {
        return Ok(IntrospectionResponse::inactive());
    };
    let record = ctx.token;
    if record.revoked_at.is_some() || record.expires_at <= now {
        return Ok(IntrospectionResponse::inactive());
    }
    let (Some(app), Some(user)) = (ctx.app.filter(|a| a.enabled), ctx.user) else {
        return Ok(IntrospectionResponse::inactive());
    };
    // A SAT acts as the app's SystemUser: if the app no longer has service
    // access, the SAT dies with it.
    if record.kind == GrantKind::Sat && app.acting_system_user() != Some(record.subject.as_str()) {
        return Ok(IntrospectionResponse::inactive());
    }
    // ERP.net looks reference tokens up on each request and applies the
    // current policies: an app that no longer allows them, a PAT whose user
    // may no longer use the app (or, on an administrators-only app, is no
    // longer an administrator), and scopes the app no longer grants.
    let policy_allows = match app.reference_tokens {
        ReferenceTokenPolicy::None => false,
        ReferenceTokenPolicy::AdministratorsOnly => record.kind == GrantKind::Sat || user.is_admin,
        ReferenceTokenPolicy::AuthenticatedUsers => true,
    };
    if !policy_allows || (record.kind == GrantKind::Pat && !may_use_api(&app, &user)) {
        return Ok(IntrospectionResponse::inactive());
    }
    let grantable = app.grantable_scopes();
    let mut scopes = record.scopes.clone();
    for s in record.scopes.iter() {
        if !grantable.contains(s) {
            scopes.remove(s);
        }
    }
    state.note_use(&hash, now);
    let cnf = record.jkt.map(|jkt| Confirmation { jkt: Some(jkt) });
    Ok(IntrospectionResponse {
        active: true,
        scope: Some(scopes),
        client_id: Some(record.client_id.clone()),
        username: Some(user.login.clone()),
        token_type: Some(token_type(cnf.as_ref()).into()),
        exp: Some(record.expires_at),
        iat: Some(record.created_at),
        sub: Some(user.login),
        iss: Some(state.issuer.clone()),
        jti: Some(record.id.clone()),
        erp_token_kind: Some(match record.kind {
            GrantKind::Pat => TokenKind::Pat,
            GrantKind::Sat => TokenKind::Sat,
        }),
        db: Some(state.config.instance.db.clone()),
        id: Some(user.id),
        is_admin: Some(user.is_admin),
        user_type: Some(user.user_type),
        cnf,
        ..IntrospectionResponse::default()
    })
}

/// `DPoP` for a token bound to a key (RFC 9449 §6.2), else `Bearer`.
fn token_type(cnf: Option<&Confirmation>) -> &'static str {
    if cnf.is_some() { "DPoP" } else { "Bearer" }
}

async fn introspect_jwt(
    state: &Identity,
    token: &str,
    now: u64,
) -> Result<IntrospectionResponse, OAuthError> {
    let Some((claims, principal)) = verify_own_access_token(state, token, now, true) else {
        return Ok(IntrospectionResponse::inactive());
    };
    if let Some(jti) = principal.jti()
        && state.store.jti_revoked(jti).await?
    {
        return Ok(IntrospectionResponse::inactive());
    }
    if !session_live(state, principal.sid()).await? {
        return Ok(IntrospectionResponse::inactive());
    }
    let enabled = match principal.client_id() {
        Some(id) => state.store.app(id).await?.is_some_and(|a| a.enabled),
        None => false,
    };
    if !enabled {
        return Ok(IntrospectionResponse::inactive());
    }
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => Some(Audience::One(a.clone())),
        Some(Value::Array(items)) => Some(Audience::Many(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        )),
        _ => None,
    };
    let is_admin = claims
        .contains_key("is_admin")
        .then_some(principal.is_admin);
    let scope = claims
        .contains_key("scope")
        .then(|| principal.scopes.clone());
    let cnf = claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str)
        .map(|jkt| Confirmation {
            jkt: Some(jkt.to_owned()),
        });
    Ok(IntrospectionResponse {
        active: true,
        scope,
        client_id: principal.client_id().map(String::from),
        username: Some(principal.subject().to_owned()),
        token_type: Some(token_type(cnf.as_ref()).into()),
        exp: Some(principal.expires_at),
        iat: claims.get("iat").and_then(Value::as_u64),
        nbf: claims.get("nbf").and_then(Value::as_u64),
        sub: Some(principal.subject().into()),
        aud,
        iss: claim_str(&claims, "iss"),
        jti: principal.jti().map(String::from),
        erp_token_kind: Some(principal.kind),
        db: principal.db().map(String::from),
        id: principal.user_id().map(String::from),
        sid: principal.sid().map(String::from),
        is_admin,
        user_type: principal.user_type().map(String::from),
        cnf,
    })
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl Identity {
    /// RFC 7662 for any token this host issued: reference tokens by hash,
    /// JWTs by signature (what the emulated API asks in-process too).
    pub async fn introspect(
        &self,
        token: &str,
        now: u64,
    ) -> Result<IntrospectionResponse, OAuthError> {
        if is_reference_token(token) {
            introspect_reference(self, token, now).await
        } else {
            introspect_jwt(self, token, now).await
        }
    }

    /// One page of the revocation feed after `cursor`.
    pub async fn revocation_feed(
        &self,
        cursor: u64,
    ) -> Result<RevocationFeedPage, erpgate_store::StoreError> {
        let rows = self.store.feed(cursor, FEED_PAGE).await?;
        let next = rows.last().map_or(cursor, |r| r.seq);
        Ok(RevocationFeedPage {
            cursor: next.to_string(),
            has_more: rows.len() == FEED_PAGE,
            events: rows.into_iter().map(|r| r.event).collect(),
        })
    }
}

/// `POST /id/connect/introspect`.
pub async fn introspect(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    let result = async {
        authenticate_caller(&state, &headers).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        state.introspect(token, state.clock.now()).await
    }
    .await;
    let outcome = match &result {
        Ok(r) if r.active => "active",
        Ok(_) => "inactive",
        Err(e) => e.error,
    };
    metrics::counter!("erpgate_requests_total", "endpoint" => "introspect", "outcome" => outcome)
        .increment(1);
    match result {
        Ok(reply) => no_store(Json(reply).into_response()),
        Err(e) => e.into_response(),
    }
}

/// `POST /id/connect/revocation`. 200 for unknown tokens (RFC 7009 §2.2), and
/// for tokens of other clients, so a client cannot probe them.
pub async fn revocation(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    let result = async {
        let who = presented(&headers, &form)?;
        let app = authenticate_app(&state, &who).await?;
        if app.client_type == ClientType::None {
            return Err(OAuthError::invalid_client(who.basic));
        }
        let token = form.get("token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let now = state.clock.now();
        if is_reference_token(token) {
            let hash = TokenHash::of(token).to_hex();
            if let Some(record) = state.store.reference_token(&hash).await?
                && record.client_id == app.client_id && state.store.revoke_reference_token(&hash, now).await?.is_some() {
                    tracing::info!(id = %record.id, client_id = %app.client_id, "reference token revoked");
                    return Ok("revoked");
                }
        } else if let Some((claims, _)) = verify_own_access_token(&state, token, now, true) {
            let jti = claims.get("jti").and_then(Value::as_str);
            let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
            if claim_str(&claims, "client_id").as_deref() == Some(app.client_id.as_str())
                && let Some(jti) = jti
                    && state.store.revoke_jti(jti, exp, now).await? {
                        tracing::info!(%jti, client_id = %app.client_id, "access token revoked");
                        return Ok("revoked");
                    }
        } else if let Some(refresh) = state.store.refresh_token(&credential_hash(token)).await?
            && refresh.basis.client_id == app.client_id
        {
            // RFC 7009 2.1: the grant's refresh tokens and the access tokens
            // issued under it end with it (their jti go to the feed).
            state.store.revoke_grant(&refresh.basis.grant_id, now).await?;
            tracing::info!(client_id = %app.client_id, "refresh token revoked with its grant");
            return Ok("revoked");
        }
        Ok("ignored")
    }
    .await;
    let outcome = match &result {
        Ok(o) => *o,
        Err(e) => e.error,
    };
    metrics::counter!("erpgate_requests_total", "endpoint" => "revocation", "outcome" => outcome)
        .increment(1);
    match result {
        Ok(_) => no_store(axum::http::StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

/// Events per feed page.
pub const FEED_PAGE: usize = 1000;

/// `GET /id/connect/revocation/feed?cursor=…`, authenticated like introspection.
pub async fn feed(
    State(state): State<Identity>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let _caller: IntrospectionCaller = authenticate_caller(&state, &headers).await?;
        let params = Form::parse(query.unwrap_or_default().as_bytes())?;
        let cursor = match params.get("cursor") {
            None => 0,
            Some(c) => c
                .parse::<u64>()
                .map_err(|_| OAuthError::invalid_request("cursor is not one this feed issued"))?,
        };
        Ok::<_, OAuthError>(state.revocation_feed(cursor).await?)
    }
    .await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("erpgate_requests_total", "endpoint" => "revocation_feed", "outcome" => outcome).increment(1);
    match result {
        Ok(page) => no_store(Json(page).into_response()),
        Err(e) => e.into_response(),
    }
}

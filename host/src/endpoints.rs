//! Discovery, JWKS, ERP.net's helpers, health, metrics and the admin API.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{GrantKind, secret_hash};
use crate::oauth::client_auth::is_admin_credential;
use crate::oauth::error::OAuthError;
use crate::oauth::form::Form;
use crate::state::AppState;
use crate::tokens::{IssueError, IssueRequest, issue};

fn metadata(state: &AppState) -> Value {
    let iss = &state.issuer;
    json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/.well-known/openid-configuration/jwks"),
        "authorization_endpoint": format!("{iss}/connect/authorize"),
        "token_endpoint": format!("{iss}/connect/token"),
        "userinfo_endpoint": format!("{iss}/connect/userinfo"),
        "end_session_endpoint": format!("{iss}/connect/endsession"),
        "introspection_endpoint": format!("{iss}/connect/introspect"),
        "revocation_endpoint": format!("{iss}/connect/revocation"),
        "erpgate_revocation_feed_endpoint": format!("{iss}/connect/revocation/feed"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code", "code id_token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "profile", "offline_access", "read", "update", "sec"],
        "claims_supported": ["sub", "name", "email", "email_verified", "locale", "id", "user_type", "is_admin", "db", "sid", "auth_time", "idp", "amr", "client_id", "client_system_user", "client_system_user_type", "client_db", "scope", "jti"],
    })
}

fn cached_json(value: Value, max_age: u32) -> Response {
    let mut r = Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}

/// `GET /id/.well-known/openid-configuration` and the RFC 8414 documents.
pub async fn discovery(State(state): State<AppState>) -> Response {
    metrics::counter!("erpgate_requests_total", "endpoint" => "discovery", "outcome" => "ok")
        .increment(1);
    cached_json(metadata(&state), 300)
}

/// `GET /id/.well-known/openid-configuration/jwks`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    metrics::counter!("erpgate_requests_total", "endpoint" => "jwks", "outcome" => "ok")
        .increment(1);
    cached_json(state.keys.jwks(), 60)
}

/// `GET /tools/sha256?secret=…`: ERP.net's helper, `{"sha256": base64}`.
pub async fn sha256_tool(RawQuery(query): RawQuery) -> Response {
    let result = Form::parse(query.unwrap_or_default().as_bytes()).and_then(|q| {
        q.get("secret")
            .map(|s| json!({ "sha256": secret_hash(s) }))
            .ok_or_else(|| OAuthError::invalid_request("secret is required"))
    });
    match result {
        Ok(body) => {
            let mut r = Json(body).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /sys/auto-discovery`: the instance's sites.
pub async fn auto_discovery(State(state): State<AppState>) -> Response {
    let base = &state.public_url;
    let host = base.split("://").nth(1).unwrap_or(base);
    Json(json!({
        "Host": host,
        "DbName": state.config.instance.db,
        "WebSites": [
            { "Type": "ID", "Status": "Working", "StatusDescription": "", "Url": format!("{base}/id"), "System": true, "AdditionalProperties": {} },
            { "Type": "DomainAPI", "Status": "Working", "StatusDescription": "", "Url": format!("{base}/api"), "System": true,
              "AdditionalProperties": { "ODataServiceRoot": format!("{base}/api/domain/odata/") } },
            { "Type": "UserProfile", "Status": "Working", "StatusDescription": "", "Url": format!("{base}/profile"), "System": true, "AdditionalProperties": {} }
        ]
    }))
    .into_response()
}

/// `GET /health`.
pub async fn health(State(state): State<AppState>) -> Response {
    match state.store.app("").await {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// The admin API's guard: `Authorization: Bearer <admin credential>`.
pub fn admin_guard(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(token) if is_admin_credential(state, token) => Ok(()),
        _ => Err(Box::new(
            (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"erpgate-admin\"")],
            Json(json!({ "error": "invalid_token", "error_description": "admin credential required" })),
        )
            .into_response(),
        )),
    }
}

/// `POST /admin/keys/rotate`: a new signing key, published at once by this
/// host and within one reload interval by every host on the store, signing
/// once all of them publish it. The keys signing until then stay published
/// for one access-token lifetime plus the edge's leeway.
pub async fn admin_rotate_key(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin_guard(&state, &headers) {
        return *r;
    }
    let now = state.clock.now();
    let rotated = crate::keys::rotate(
        state.store.as_ref(),
        now,
        crate::keys::PUBLISH_BEFORE_SIGNING_S,
        state.config.instance.access_token_lifetime_s + 300,
    )
    .await;
    let kid = match rotated {
        Ok(kid) => kid,
        Err(e) => {
            tracing::error!(error = %e, "key rotation failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "temporarily_unavailable" })),
            )
                .into_response();
        }
    };
    if let Err(e) = state.keys.reload(state.store.as_ref(), now).await {
        tracing::warn!(error = %e, "reloading keys after rotation failed");
    }
    tracing::info!(kid = %kid, "signing key rotated");
    (
        StatusCode::CREATED,
        Json(json!({
            "kid": kid,
            "signs_from": now + crate::keys::PUBLISH_BEFORE_SIGNING_S,
        })),
    )
        .into_response()
}

/// Body of `POST /admin/reference-tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// The trusted application.
    pub client_id: String,
    /// `pat` or `sat`.
    pub kind: GrantKind,
    /// For a PAT: the user.
    #[serde(default)]
    pub user: Option<String>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Or lifetime in days.
    #[serde(default)]
    pub expires_in_days: Option<u64>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

fn issue_error(e: &IssueError) -> Response {
    let status = match e {
        IssueError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        IssueError::UnknownApp | IssueError::UnknownUser => StatusCode::NOT_FOUND,
        IssueError::NotAllowed
        | IssueError::AdministratorsOnly
        | IssueError::SatNeedsAdministrator => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match e {
        IssueError::Store(inner) => {
            tracing::error!(error = %inner, "issuing a reference token failed");
            "internal error".to_owned()
        }
        other => other.to_string(),
    };
    (
        status,
        Json(json!({ "error": "invalid_request", "error_description": message })),
    )
        .into_response()
}

/// `POST /admin/reference-tokens`: mint a PAT or SAT; the value is in this
/// response only.
pub async fn admin_issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = admin_guard(&state, &headers) {
        return *r;
    }
    let body: IssueBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "invalid_request", "error_description": e.to_string() })),
            )
                .into_response();
        }
    };
    let now = state.clock.now();
    let expires_at = match (body.expires_at, body.expires_in_days) {
        (Some(at), None) => at,
        (None, Some(days)) => now.saturating_add(days.saturating_mul(86_400)),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "invalid_request", "error_description": "give exactly one of expires_at or expires_in_days" })),
            )
                .into_response();
        }
    };
    let request = IssueRequest {
        client_id: body.client_id,
        kind: body.kind,
        user: body.user,
        requested_by: None,
        scope: body.scope,
        expires_at,
        description: body.description,
    };
    match issue(
        state.store.as_ref(),
        &request,
        now,
        state.config.instance.reference_token_max_days,
    )
    .await
    {
        Ok(issued) => {
            tracing::info!(id = %issued.record.id, kind = issued.record.kind.as_str(), client_id = %issued.record.client_id, "reference token issued");
            (
                StatusCode::CREATED,
                [(header::CACHE_CONTROL, "no-store")],
                Json(json!({ "token": issued.value, "record": issued.record })),
            )
                .into_response()
        }
        Err(e) => issue_error(&e),
    }
}

/// `GET /admin/reference-tokens`: metadata only, never values or hashes.
pub async fn admin_list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin_guard(&state, &headers) {
        return *r;
    }
    match state.store.reference_tokens().await {
        Ok(list) => Json(json!({ "tokens": list })).into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// `DELETE /admin/reference-tokens/{id}`: revoke.
pub async fn admin_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admin_guard(&state, &headers) {
        return *r;
    }
    match state
        .store
        .revoke_reference_token(&id, state.clock.now())
        .await
    {
        Ok(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// The JSON 404 for unknown paths.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response()
}

//! The operator's surface: Prometheus metrics and the admin API (signing-key
//! rotation, PAT/SAT minting, listing and revocation), behind the admin
//! credential.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::oauth::client_auth::is_admin_credential;
use crate::oauth::error::OAuthError;
use crate::reference_tokens::{IssueError, IssueRequest};
use crate::service::Identity;
use erpgate_store::records::GrantKind;

/// `GET /metrics`: Prometheus text.
pub async fn metrics_text(State(state): State<Identity>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// The admin API's guard: `Authorization: Bearer <admin credential>`.
pub fn guard(state: &Identity, headers: &HeaderMap) -> Result<(), Box<Response>> {
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
pub async fn rotate_key(State(state): State<Identity>, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&state, &headers) {
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
    /// Bind the token to this DPoP key's RFC 7638 thumbprint.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

fn issue_error(e: &IssueError) -> Response {
    let status = match e {
        IssueError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        IssueError::UnknownApp | IssueError::UnknownUser => StatusCode::NOT_FOUND,
        IssueError::NotAllowed
        | IssueError::AdministratorsOnly
        | IssueError::SatNeedsAdministrator
        | IssueError::UserTypeNotAllowed => StatusCode::FORBIDDEN,
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
pub async fn issue_reference_token(
    State(state): State<Identity>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = guard(&state, &headers) {
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
        jkt: body.dpop_jkt,
    };
    match state.issue_reference_token(&request, now).await {
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
pub async fn list_reference_tokens(State(state): State<Identity>, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&state, &headers) {
        return *r;
    }
    match state.store.reference_tokens().await {
        Ok(list) => Json(json!({ "tokens": list })).into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// `DELETE /admin/reference-tokens/{id}`: revoke.
pub async fn revoke_reference_token(
    State(state): State<Identity>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = guard(&state, &headers) {
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

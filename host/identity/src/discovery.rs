//! Public documents: OIDC and RFC 8414 discovery, the JWKS, ERP.net's
//! tools and auto-discovery, health, and the JSON 404.
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::oauth::error::OAuthError;
use crate::oauth::form::Form;
use crate::service::Identity;
use erpgate_store::secrets::secret_hash;

fn metadata(state: &Identity) -> Value {
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
        "dpop_signing_alg_values_supported": crate::oauth::dpop::DPOP_ALGORITHMS.map(|a| a.name()),
        "subject_types_supported": ["public"],
        // `sec` is granted to the instance's internal apps only, so it is
        // not advertised to clients at large.
        "scopes_supported": ["openid", "profile", "offline_access", "read", "update"],
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
pub async fn discovery(State(state): State<Identity>) -> Response {
    metrics::counter!("erpgate_requests_total", "endpoint" => "discovery", "outcome" => "ok")
        .increment(1);
    cached_json(metadata(&state), 300)
}

/// `GET /id/.well-known/openid-configuration/jwks`.
pub async fn jwks(State(state): State<Identity>) -> Response {
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
pub async fn auto_discovery(State(state): State<Identity>) -> Response {
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
pub async fn health(State(state): State<Identity>) -> Response {
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

/// The JSON 404 for unknown paths.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response()
}

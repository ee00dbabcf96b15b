//! `GET /profile/me` and the license table's admin API.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::decide::ApiCaller;
use crate::errors::*;
use crate::state::*;

/// `GET /profile/me`: user tokens and PATs only (the policy refuses service
/// tokens and SATs; legacy credentials are refused here).
pub async fn profile_me(
    State(state): State<ErpApi>,
    caller: Option<axum::Extension<ApiCaller>>,
) -> Response {
    let Some(axum::Extension(ApiCaller::Token(principal, _))) = caller else {
        return erp_error(
            StatusCode::FORBIDDEN,
            "UnsupportedCredential",
            "The profile API accepts user access tokens and personal access tokens only.",
        );
    };
    let user = match state.identity.store.user(principal.subject()).await {
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
        "Database": state.identity.config.instance.db,
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /admin/sessions`: the license table.
pub async fn admin_sessions(State(state): State<ErpApi>, headers: HeaderMap) -> Response {
    if let Err(r) = erpgate_identity::admin::guard(&state.identity, &headers) {
        return *r;
    }
    match state.api.sessions.table(state.identity.clock.now()).await {
        Ok(table) => Json(table).into_response(),
        Err(e) => session_refused(e),
    }
}

/// `DELETE /admin/sessions/{id}`: ends a session; its slot is free at once.
pub async fn admin_end_session(
    State(state): State<ErpApi>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(r) = erpgate_identity::admin::guard(&state.identity, &headers) {
        return *r;
    }
    match state.api.sessions.close(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response(),
        Err(e) => session_refused(e),
    }
}

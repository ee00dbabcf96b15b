//! `/id/connect/token`: the client-credentials grant, following ERP.net.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use erpgate::ScopeSet;
use jwt_simple::prelude::{Claims, Duration};
use serde_json::{Value, json};

use super::claims::*;
use super::client_auth::{authenticate_app, presented};
use super::error::OAuthError;
use super::form::Form;
use crate::service::Identity;
use erpgate_store::secrets::random_hex;

/// `POST /id/connect/token`.
pub async fn token(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    let endpoint = format!("{}/connect/token", state.issuer);
    let target = super::dpop::Target {
        method: "POST",
        uri: &endpoint,
        access_token: None,
    };
    let result = match super::dpop::proven_key(&state, &headers, &target) {
        Err(e) => Err(e),
        Ok(jkt) => {
            let jkt = jkt.as_deref();
            match form.get("grant_type") {
                None => Err(OAuthError::invalid_request("grant_type is required")),
                Some("client_credentials") => {
                    client_credentials(&state, &headers, &form, jkt).await
                }
                Some("authorization_code") => {
                    super::grants::authorization_code(&state, &headers, &form, jkt).await
                }
                Some("refresh_token") => {
                    super::grants::refresh_token(&state, &headers, &form, jkt).await
                }
                Some(_) => Err(OAuthError::unsupported_grant_type()),
            }
        }
    };
    let outcome = match &result {
        Ok(_) => "issued",
        Err(e) => e.error,
    };
    metrics::counter!("erpgate_requests_total", "endpoint" => "token", "outcome" => outcome)
        .increment(1);
    match result {
        Ok(body) => {
            let kind = if form.get("grant_type") == Some("client_credentials") {
                "service"
            } else {
                "user"
            };
            metrics::counter!("erpgate_tokens_issued_total", "kind" => kind).increment(1);
            let mut response = Json(body).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            if let Some(nonce) =
                super::dpop::current_nonce(&state).and_then(|n| HeaderValue::from_str(&n).ok())
            {
                response.headers_mut().insert("dpop-nonce", nonce);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Which scopes a client-credentials request receives.
pub fn granted_scopes(
    requested: Option<&str>,
    app_scopes: &ScopeSet,
    accept_legacy: bool,
) -> Result<ScopeSet, OAuthError> {
    let Some(requested) = requested else {
        // ERP.net: no `scope` means every scope configured on the app.
        let mut all = app_scopes.clone();
        for s in IDENTITY_SCOPES {
            all.remove(s);
        }
        return Ok(all);
    };
    let requested = ScopeSet::parse(requested)
        .map_err(|_| OAuthError::invalid_scope("scope is not a list of scope tokens"))?;
    let mut granted = ScopeSet::new();
    for scope in requested.iter() {
        if scope == LEGACY_DOMAINAPI && accept_legacy {
            // Tolerated for the official .NET client; it grants nothing more.
            continue;
        }
        if IDENTITY_SCOPES.contains(&scope) {
            return Err(OAuthError::invalid_scope(format!(
                "Invalid scope: {scope} (identity scopes are not issued to services)"
            )));
        }
        if !app_scopes.contains(scope) {
            return Err(OAuthError::invalid_scope(format!("Invalid scope: {scope}")));
        }
        granted
            .insert(scope)
            .map_err(|_| OAuthError::invalid_scope("scope is not a list of scope tokens"))?;
    }
    Ok(granted)
}

async fn client_credentials(
    state: &Identity,
    headers: &HeaderMap,
    form: &Form,
    jkt: Option<&str>,
) -> Result<Value, OAuthError> {
    let who = presented(headers, form)?;
    let app = authenticate_app(state, &who).await?;
    super::dpop::required_by(&app, jkt)?;
    let Some(system_login) = app.acting_system_user() else {
        return Err(OAuthError::unauthorized_client(
            "the application is not allowed service access (SystemUserAllowed and a SystemUser are required)",
        ));
    };
    let scopes = granted_scopes(
        form.get("scope"),
        &app.grantable_scopes(),
        state.config.instance.accept_legacy_domainapi_scope,
    )?;
    let system_user = state.store.user(system_login).await?.ok_or_else(|| {
        OAuthError::unauthorized_client("the application's SystemUser does not exist")
    })?;
    let lifetime = state.config.instance.access_token_lifetime_s;
    let now = state.clock.now();
    let custom = ServiceClaims {
        aud: audience(state, &scopes),
        client_id: app.client_id.clone(),
        client_system_user: system_user.login,
        client_system_user_type: system_user.user_type,
        client_system_user_id: Some(system_user.id),
        client_db: state.config.instance.db.clone(),
        scope: scopes.iter().map(str::to_owned).collect(),
        cnf: confirmation(jkt),
    };
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(lifetime))
        .with_issuer(&state.issuer)
        .with_jwt_id(random_hex(16));
    claims.issued_at = Some(Duration::from_secs(now));
    claims.invalid_before = Some(Duration::from_secs(now));
    claims.expires_at = Some(Duration::from_secs(now.saturating_add(lifetime)));
    let access_token = state
        .keys
        .sign(claims, "at+jwt")
        .map_err(|e| OAuthError::server_error(&e))?;
    tracing::info!(client_id = %app.client_id, scope = %scopes, "issued client-credentials token");
    Ok(json!({
        "access_token": access_token,
        "expires_in": lifetime,
        "token_type": token_type(jkt),
        "scope": scopes.to_string(),
    }))
}

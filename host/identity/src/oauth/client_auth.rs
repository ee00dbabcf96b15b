//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic` or `client_secret_post`, never both. Secrets are
//! compared as ERP.net stores them, base64(SHA-256), in constant time.

use axum::http::HeaderMap;
use base64::Engine as _;

use super::error::OAuthError;
use super::form::Form;
use crate::service::Identity;
use erpgate_store::records::{ClientType, TrustedApp};
use erpgate_store::secrets::{secret_hash, secret_matches};

/// Credentials as presented.
#[derive(Debug)]
pub struct Presented {
    /// The client id.
    pub client_id: String,
    /// The secret, if any.
    pub secret: Option<String>,
    /// Whether they came in an HTTP Basic header.
    pub basic: bool,
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Reads `Authorization: Basic`, if present (RFC 6749 §2.3.1: both parts
/// form-urlencoded before base64).
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request("several Authorization headers"));
    }
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_client(true))?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client(true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(true));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    Ok(Some((percent_decode(id), percent_decode(secret))))
}

/// The credentials of a token or revocation request.
pub fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented, OAuthError> {
    let basic = basic_credentials(headers)?;
    match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "client authenticated by more than one method",
        )),
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret).filter(|s| !s.is_empty()),
                basic: true,
            })
        }
        (None, Some(id), secret) => Ok(Presented {
            client_id: id.to_owned(),
            secret: secret.map(str::to_owned),
            basic: false,
        }),
        (None, None, _) => Err(OAuthError::invalid_request("client_id is required")),
    }
}

// A hash no secret produces, compared against when the client is unknown so
// that unknown and known clients take the same time.
const DUMMY_HASH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Authenticates a trusted application. Unknown, disabled, a missing or wrong
/// secret, or a secret sent by a public client: `invalid_client`.
pub async fn authenticate_app(state: &Identity, p: &Presented) -> Result<TrustedApp, OAuthError> {
    let app = state.store.app(&p.client_id).await?;
    let Some(app) = app else {
        let _ = secret_matches(p.secret.as_deref().unwrap_or(""), DUMMY_HASH);
        return Err(OAuthError::invalid_client(p.basic));
    };
    let ok = match (app.client_type, &p.secret, &app.secret_hash) {
        (ClientType::Confidential, Some(secret), Some(hash)) => secret_matches(secret, hash),
        (ClientType::Public, None, _) => true,
        // A public client that sends a secret, a confidential one that does not,
        // and `None` placeholder registrations all fail.
        _ => false,
    };
    if !ok || !app.enabled {
        return Err(OAuthError::invalid_client(p.basic));
    }
    Ok(app)
}

/// Who is calling introspection or the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntrospectionCaller {
    /// A confidential trusted application.
    App(String),
    /// A configured API resource.
    ApiResource(String),
}

/// Authenticates an introspection / feed caller: HTTP Basic only, as a
/// confidential trusted app or an API resource.
pub async fn authenticate_caller(
    state: &Identity,
    headers: &HeaderMap,
) -> Result<IntrospectionCaller, OAuthError> {
    let Some((id, secret)) = basic_credentials(headers)? else {
        return Err(OAuthError::invalid_client(true));
    };
    if let Some(hash) = state.api_resources.get(&id) {
        return if secret_matches(&secret, hash) {
            Ok(IntrospectionCaller::ApiResource(id))
        } else {
            Err(OAuthError::invalid_client(true))
        };
    }
    let presented = Presented {
        client_id: id,
        secret: Some(secret),
        basic: true,
    };
    let app = authenticate_app(state, &presented).await?;
    if app.client_type != ClientType::Confidential {
        return Err(OAuthError::invalid_client(true));
    }
    Ok(IntrospectionCaller::App(app.client_id))
}

/// Whether `secret` is the admin credential.
pub fn is_admin_credential(state: &Identity, secret: &str) -> bool {
    // Both sides are base64(SHA-256): equal length, compared in constant time.
    secret_matches(secret, &state.admin_hash) && !secret_hash("").eq(&state.admin_hash)
}

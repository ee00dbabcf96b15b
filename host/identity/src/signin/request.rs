//! An authorization request as validated from `/id/connect/authorize`, the
//! sign-in it starts, and how the response reaches the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use erpgate::ScopeSet;
use serde::{Deserialize, Serialize};

use super::cookies::{error_page, unavailable_page};
use super::pages;
use super::state::SigninState;
use crate::oauth::claims::IDENTITY_SCOPES;
use crate::oauth::form::Form;
use crate::service::Identity;
use erpgate_store::records::{ClientType, TrustedApp};

/// How long an authorization code is valid (ERP.net: "short-lived"; the
/// issue asks for 60–300 s).
pub const CODE_LIFETIME_S: u64 = 120;
/// How long a started sign-in (login and consent pages) stays usable.
pub const REQUEST_LIFETIME_S: u64 = 600;

/// The longest authorization request query accepted.
const MAX_QUERY_BYTES: usize = 4096;
/// The longest `state` or `nonce` accepted.
const MAX_ECHOED_BYTES: usize = 512;

/// How the response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    Query,
    Fragment,
    FormPost,
}

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuthRequest {
    pub(crate) client_id: String,
    pub(crate) app_name: String,
    pub(crate) redirect_uri: String,
    pub(crate) hybrid: bool,
    pub(crate) mode: Mode,
    pub(crate) scopes: ScopeSet,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) prompt_login: bool,
    pub(crate) prompt_none: bool,
}

/// A sign-in in progress, between its pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// The authorization request; `None` for a sign-in to the user's own
    /// profile pages.
    pub(crate) request: Option<AuthRequest>,
    pub(crate) csrf: String,
    pub(crate) created_at: u64,
    /// Set once the user has signed in: (login, sid).
    pub(crate) signed_in: Option<(String, String)>,
    /// For a profile sign-in: the local page to return to (an installation
    /// link), checked by [`crate::install::return_path`].
    #[serde(default)]
    pub(crate) return_to: Option<String>,
}

/// Sends the authorization response (success or error) to the client.
pub(crate) fn deliver(
    state: &Identity,
    request: &AuthRequest,
    mut fields: Vec<(&str, String)>,
) -> Response {
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

pub(crate) fn redirect_error(
    state: &Identity,
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
pub(crate) fn challenge_shape(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is wrong with a request's PKCE parameters, if anything: S256 only,
/// a well-formed challenge, and always one from a public client.
fn pkce_error(
    app: &TrustedApp,
    method: Option<&str>,
    challenge: Option<&str>,
) -> Option<&'static str> {
    match (method, challenge) {
        (Some(m), _) if m != "S256" => Some("code_challenge_method must be S256"),
        (Some(_), None) => Some("code_challenge_method without code_challenge"),
        (None, Some(_)) => Some("code_challenge_method must be S256 (plain is not supported)"),
        (_, Some(c)) if !challenge_shape(c) => {
            Some("code_challenge must be 43 base64url characters")
        }
        (_, None) if app.client_type == ClientType::Public => {
            Some("public clients must use PKCE (code_challenge with S256)")
        }
        _ => None,
    }
}

/// ERP.net issues refresh tokens to confidential clients only: for an app
/// that gets none, the grant loses `offline_access` (and the response's
/// `scope` says so).
fn without_refused_refresh(app: &TrustedApp, mut scopes: ScopeSet) -> ScopeSet {
    if !app.refresh_tokens_allowed() {
        scopes.remove("offline_access");
    }
    scopes
}

/// `state` and `nonce` travel in the sign-in form and come back in the code,
/// the tokens and the redirect: bounded, like every parameter.
fn echoes_too_long(params: &Form) -> bool {
    ["state", "nonce"]
        .iter()
        .any(|name| params.get(name).is_some_and(|v| v.len() > MAX_ECHOED_BYTES))
}

/// Validates the query of an authorization request. `Err` carries the
/// response: an error page before the client and redirect URI are trusted,
/// a redirect after.
pub(crate) async fn validate(state: &Identity, query: &str) -> Result<AuthRequest, Box<Response>> {
    let bad = |detail: &str| {
        Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            detail,
        )))
    };
    if query.len() > MAX_QUERY_BYTES {
        return bad("The request is too long.");
    }
    let params = match Form::parse(query.as_bytes()) {
        Ok(p) => p,
        Err(_) => return bad("The request repeats a parameter or is not valid UTF-8."),
    };
    if echoes_too_long(&params) {
        return bad("state and nonce may have at most 512 characters.");
    }
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
        .map_or_else(|| app.grantable_scopes().to_string(), str::to_owned);
    let Ok(scopes) = ScopeSet::parse(&scope) else {
        return fail(
            &request,
            "invalid_scope",
            "scope is not a list of scope tokens",
        );
    };
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !IDENTITY_SCOPES.contains(s) && !app.grantable_scopes().contains(s))
    {
        return fail(
            &request,
            "invalid_scope",
            &format!("Invalid scope: {unknown}"),
        );
    }
    request.scopes = without_refused_refresh(&app, scopes);
    if hybrid && (!request.scopes.contains("openid") || request.nonce.is_none()) {
        return fail(
            &request,
            "invalid_request",
            "code id_token needs the openid scope and a nonce",
        );
    }
    if let Some(description) = pkce_error(
        &app,
        params.get("code_challenge_method"),
        request.code_challenge.as_deref(),
    ) {
        return fail(&request, "invalid_request", description);
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

impl Pending {
    /// Stores this sign-in between its pages; a page that cannot be stored
    /// is not shown.
    pub(crate) async fn remember(
        &self,
        signin: &SigninState,
        id: &str,
    ) -> Result<(), Box<Response>> {
        let expires_at = self.created_at.saturating_add(REQUEST_LIFETIME_S);
        if signin.remember(id, self, expires_at).await {
            Ok(())
        } else {
            Err(Box::new(unavailable_page()))
        }
    }
}

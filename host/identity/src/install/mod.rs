//! ERP.net's installation links: `GET /manage/apps/install?…` and
//! `GET /manage/apps/uninstall?applicationUri=…`. Administrators only; a
//! visitor who is not signed in signs in first and comes back. Each link
//! shows a confirmation page of what it will grant or remove; confirming
//! (a POST with the profile pages' CSRF token) creates or removes the
//! trusted app, shows a generated secret once, and posts a signed lifecycle
//! event to the app ([`lifecycle`]). An uninstall removes the app with its
//! refresh tokens, reference tokens and consents, and tells the edges
//! (a `client_id` feed event), which then refuse its tokens.

pub mod lifecycle;
pub mod params;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::changes;
use crate::oauth::form::Form;
use crate::reference_tokens::{IssueRequest, issue};
use crate::service::Identity;
use crate::signin::cookies::{current_session, error_page};
use crate::signin::pages::{layout, respond, scope_words};
use erpgate_store::StoreError;
use erpgate_store::records::{
    ClientType, GrantKind, IdentitySession, ReferenceTokenPolicy, TrustedApp, User,
};
use erpgate_store::secrets::{new_secret, secret_hash};
use lifecycle::Delivery;
use params::{Impersonate, Install, ServiceAccess};

/// The install link's path.
pub const INSTALL_PATH: &str = "/manage/apps/install";
/// The uninstall link's path.
pub const UNINSTALL_PATH: &str = "/manage/apps/uninstall";

/// A local page a profile sign-in may return to: an installation link, at
/// most 4 KiB. Anything else (another site, another page) is dropped.
pub fn return_path(path: &str) -> Option<String> {
    let (base, _) = path.split_once('?').unwrap_or((path, ""));
    ((base == INSTALL_PATH || base == UNINSTALL_PATH)
        && path.len() <= 4096
        && !path.chars().any(|c| c.is_control()))
    .then(|| path.to_owned())
}

/// The signed-in administrator; otherwise a sign-in that returns to `back`
/// (for a link), or a refusal.
async fn administrator(
    state: &Identity,
    headers: &HeaderMap,
    back: Option<String>,
) -> Result<(IdentitySession, User), Box<Response>> {
    match current_session(state, headers).await {
        Some((session, user)) if user.is_admin => Ok((session, user)),
        Some(_) => Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "Only an administrator of this instance can install or uninstall apps.",
        ))),
        None => match back {
            Some(back) => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("return", &back)
                    .finish();
                let mut r = StatusCode::SEE_OTHER.into_response();
                if let Ok(to) = HeaderValue::from_str(&format!("/id/account/login?{query}")) {
                    r.headers_mut().insert(header::LOCATION, to);
                }
                Err(Box::new(r))
            }
            None => Err(Box::new(error_page(
                StatusCode::FORBIDDEN,
                "Sign in first",
                "Open the installation link again to sign in.",
            ))),
        },
    }
}

/// The administrator of a confirmation form whose CSRF token checks out.
async fn confirming(
    state: &Identity,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(IdentitySession, User), Box<Response>> {
    let (session, user) = administrator(state, headers, None).await?;
    let expected = state.signin.profile_csrf(&session.sid);
    let given = form.get("csrf").unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form could not be verified (CSRF).",
        )));
    }
    Ok((session, user))
}

/// An opened link: its administrator's session and its parameters. A
/// visitor who is not signed in is sent to sign in and back to `path`.
async fn opened(
    state: &Identity,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
) -> Result<(IdentitySession, Form), Box<Response>> {
    let query = query.unwrap_or("");
    let back = return_path(&format!("{path}?{query}"));
    let (session, _) = administrator(state, headers, back).await?;
    if query.len() > 4096 {
        return Err(Box::new(invalid("the link is longer than 4 KiB")));
    }
    let form = Form::parse(query.as_bytes()).map_err(|e| Box::new(invalid(&e.description)))?;
    Ok((session, form))
}

fn invalid(detail: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, "Invalid installation link", detail)
}

fn unavailable() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Try again in a moment.",
    )
}

/// `GET /manage/apps/install`: the confirmation page.
pub async fn install_page(
    State(state): State<Identity>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (session, form) = match opened(&state, &headers, INSTALL_PATH, query.as_deref()).await {
        Ok(opened) => opened,
        Err(r) => return *r,
    };
    let install = match Install::parse(&form) {
        Ok(i) => i,
        Err(e) => return invalid(&e.to_string()),
    };
    match state.store.app(&install.application_uri).await {
        Ok(None) => {}
        Ok(Some(_)) => return already_installed(&install.application_uri),
        Err(_) => return unavailable(),
    }
    let csrf = state.signin.profile_csrf(&session.sid);
    respond(StatusCode::OK, confirm_install(&install, &form, &csrf))
}

fn already_installed(uri: &str) -> Response {
    error_page(
        StatusCode::CONFLICT,
        "Already installed",
        &format!("An app {uri} is installed already; uninstall it first."),
    )
}

/// `POST /manage/apps/install`: installs, and tells the app.
pub async fn install(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    if let Err(r) = confirming(&state, &headers, &form).await {
        return *r;
    }
    let install = match Install::parse(&form) {
        Ok(i) => i,
        Err(e) => return invalid(&e.to_string()),
    };
    let now = state.clock.now();
    let mut app = install.app(now);
    if app.system_user.is_some() && ensure_system_user(&state).await.is_err() {
        return unavailable();
    }
    let secret = install.request_secret.then(new_secret);
    app.secret_hash = secret.as_deref().map(secret_hash);
    match state.store.insert_app(&app).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return already_installed(&app.client_id),
        Err(_) => return unavailable(),
    }
    tracing::info!(client_id = %app.client_id, "app installed by an installation link");
    let sat = match install.service_access {
        ServiceAccess::ReferenceToken => match mint_sat(&state, &app, now).await {
            Ok(token) => Some(token),
            Err(e) => {
                tracing::error!(error = %e, "could not mint the install's SAT");
                return unavailable();
            }
        },
        _ => None,
    };
    let payload = event(
        "installed",
        &state,
        &app,
        now,
        secret.as_deref(),
        sat.as_deref(),
    );
    let delivery = lifecycle::deliver(
        &state,
        app.redirect_uris.first().map(String::as_str),
        payload,
    )
    .await;
    respond(
        StatusCode::OK,
        installed(&app, secret.as_deref(), &delivery),
    )
}

/// The SystemUser installs pre-fill, created (no password, no sign-in) if
/// the instance lacks it.
async fn ensure_system_user(state: &Identity) -> Result<(), StoreError> {
    let user = User {
        login: params::SYSTEM_APPLICATION_USER.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        name: "System application user".to_owned(),
        email: String::new(),
        user_type: "ApplicationUserNoLogin".to_owned(),
        is_admin: false,
        locale: "en".to_owned(),
        password_hash: None,
    };
    match state.store.insert_user(&user).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn mint_sat(state: &Identity, app: &TrustedApp, now: u64) -> anyhow::Result<String> {
    let max_days = state.config.instance.reference_token_max_days;
    let request = IssueRequest {
        client_id: app.client_id.clone(),
        kind: GrantKind::Sat,
        user: None,
        requested_by: None,
        scope: None,
        expires_at: now.saturating_add(max_days.saturating_mul(86_400)),
        description: "installation".to_owned(),
        jkt: None,
    };
    Ok(issue(state.store.as_ref(), &request, now, max_days)
        .await?
        .value)
}

/// A lifecycle event's payload, with the install's secret and SAT if any.
fn event(
    kind: &str,
    state: &Identity,
    app: &TrustedApp,
    now: u64,
    secret: Option<&str>,
    sat: Option<&str>,
) -> Value {
    let mut payload = serde_json::Map::new();
    let mut put = |name: &str, value: Value| {
        payload.insert(name.to_owned(), value);
    };
    put("event", json!(kind));
    put("eventId", json!(uuid::Uuid::new_v4().to_string()));
    put("occurredAt", json!(now));
    put("instance", json!(state.public_url));
    put("applicationUri", json!(app.client_id));
    put("applicationName", json!(app.name));
    put("clientType", json!(client_type_name(app.client_type)));
    put("scope", json!(app.scope.to_string()));
    if let Some(secret) = secret {
        put("clientSecret", json!(secret));
    }
    if let Some(sat) = sat {
        put("referenceToken", json!(sat));
    }
    Value::Object(payload)
}

/// `GET /manage/apps/uninstall`: the confirmation page.
pub async fn uninstall_page(
    State(state): State<Identity>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (session, form) = match opened(&state, &headers, UNINSTALL_PATH, query.as_deref()).await {
        Ok(opened) => opened,
        Err(r) => return *r,
    };
    let uri = match uninstall_uri(&form) {
        Ok(uri) => uri,
        Err(r) => return *r,
    };
    let app = match state.store.app(&uri).await {
        Ok(Some(app)) => app,
        Ok(None) => return not_installed(&uri),
        Err(_) => return unavailable(),
    };
    let csrf = state.signin.profile_csrf(&session.sid);
    respond(StatusCode::OK, confirm_uninstall(&app, &csrf))
}

/// An uninstall link's one parameter.
fn uninstall_uri(form: &Form) -> Result<String, Box<Response>> {
    params::only_known(form, &["applicationUri"])
        .and_then(|()| params::application_uri(form))
        .map_err(|e| Box::new(invalid(&e.to_string())))
}

fn not_installed(uri: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not installed",
        &format!("No app {uri} is installed."),
    )
}

/// `POST /manage/apps/uninstall`: removes the app, tells the edges and the app.
pub async fn uninstall(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    if let Err(r) = confirming(&state, &headers, &form).await {
        return *r;
    }
    let uri = match uninstall_uri(&form) {
        Ok(uri) => uri,
        Err(r) => return *r,
    };
    let now = state.clock.now();
    let app = match state.store.app(&uri).await {
        Ok(Some(app)) => app,
        Ok(None) => return not_installed(&uri),
        Err(_) => return unavailable(),
    };
    match state.store.delete_app(&uri, now).await {
        Ok(true) => {}
        Ok(false) => return not_installed(&uri),
        Err(_) => return unavailable(),
    }
    let lifetime = state.config.instance.access_token_lifetime_s;
    if let Err(e) = changes::app_changed(state.store.as_ref(), &uri, now, lifetime).await {
        tracing::error!(error = %e, client_id = %uri, "uninstalled, but the edges were not told");
        return unavailable();
    }
    tracing::info!(client_id = %uri, "app uninstalled by an installation link");
    let payload = event("uninstalled", &state, &app, now, None, None);
    let delivery = lifecycle::deliver(
        &state,
        app.redirect_uris.first().map(String::as_str),
        payload,
    )
    .await;
    respond(StatusCode::OK, uninstalled(&app, &delivery))
}

/// The name installation links use for a client type.
fn client_type_name(t: ClientType) -> &'static str {
    match t {
        ClientType::Confidential => "Confidential",
        ClientType::Public => "Public",
        ClientType::None => "None",
    }
}

fn reference_token_words(policy: ReferenceTokenPolicy) -> &'static str {
    match policy {
        ReferenceTokenPolicy::None => "none",
        ReferenceTokenPolicy::AuthenticatedUsers => "users may create personal access tokens",
        ReferenceTokenPolicy::AdministratorsOnly => "administrators create access tokens",
    }
}

fn client_type_words(t: ClientType) -> &'static str {
    match t {
        ClientType::Confidential => "Confidential (authenticates with a secret)",
        ClientType::Public => "Public (no secret; PKCE)",
        ClientType::None => "None (no authentication)",
    }
}

fn confirm_install(install: &Install, form: &Form, csrf: &str) -> Markup {
    let users = match install.impersonate {
        Impersonate::None => "nobody",
        Impersonate::Internal => "internal users",
        Impersonate::All => "internal and community users",
    };
    let service = match install.service_access {
        ServiceAccess::None => "none",
        ServiceAccess::ClientCredentials => "client credentials, as SYSTEM_APPLICATION_USER",
        ServiceAccess::ReferenceToken => {
            "a service access token, as SYSTEM_APPLICATION_USER, sent to the app"
        }
    };
    layout(
        "Install app",
        html! {
            h1 { "Install " (install.name) "?" }
            dl #grant {
                dt { "Application URI" } dd { code { (install.application_uri) } }
                dt { "Client type" } dd { (client_type_words(install.client_type)) }
                dt { "Signs in" } dd { (users) }
                dt { "Service access" } dd { (service) }
                dt { "Reference tokens" } dd { (reference_token_words(install.app(0).reference_tokens)) }
                dt { "Secret" } dd { @if install.request_secret { "generated now, shown once" } @else { "none" } }
                @if let Some(uri) = &install.redirect_uri { dt { "Return address" } dd { code { (uri) } } }
            }
            p { "It may:" }
            ul #scopes {
                @for scope in install.scope.iter() {
                    li { (scope_words(scope)) " " small { "(" code { (scope) } ")" } }
                }
                @if install.scope.is_empty() { li { "nothing beyond signing in" } }
            }
            form method="post" action=(INSTALL_PATH) {
                @for (name, value) in &form.0 {
                    input type="hidden" name=(name) value=(value);
                }
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" #install { "Install" }
            }
        },
    )
}

fn delivery_words(delivery: &Delivery) -> String {
    match delivery {
        Delivery::Delivered(status) => format!("The app was told (HTTP {status})."),
        Delivery::NoAddress => "The app has no return address to tell.".to_owned(),
        Delivery::Failed(why) => format!("The app was not told: {why}."),
    }
}

fn installed(app: &TrustedApp, secret: Option<&str>, delivery: &Delivery) -> Markup {
    layout(
        "Installed",
        html! {
            h1 { "Installed " (app.name) }
            p { "Application URI: " code #client-id { (app.client_id) } }
            @if let Some(secret) = secret {
                p { "Its secret, shown this once (only its hash is kept):" }
                p { code #secret { (secret) } }
            }
            p #delivery { (delivery_words(delivery)) }
        },
    )
}

fn confirm_uninstall(app: &TrustedApp, csrf: &str) -> Markup {
    layout(
        "Uninstall app",
        html! {
            h1 { "Uninstall " (app.name) "?" }
            p { "Application URI: " code { (app.client_id) } }
            p { "Its tokens stop working, and the consents given to it are forgotten." }
            form method="post" action=(UNINSTALL_PATH) {
                input type="hidden" name="applicationUri" value=(app.client_id);
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" #uninstall { "Uninstall" }
            }
        },
    )
}

fn uninstalled(app: &TrustedApp, delivery: &Delivery) -> Markup {
    layout(
        "Uninstalled",
        html! {
            h1 { "Uninstalled " (app.name) }
            p #delivery { (delivery_words(delivery)) }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installation_links_are_returned_to() {
        assert!(return_path("/manage/apps/install?applicationUri=a").is_some());
        assert!(return_path("/manage/apps/uninstall?applicationUri=a").is_some());
        for other in [
            "https://evil.example/manage/apps/install",
            "//evil.example/manage/apps/install",
            "/profile/security/tokens",
            "/manage/apps/installx",
            "/manage/apps/install?\r\nSet-Cookie: x",
        ] {
            assert!(return_path(other).is_none(), "{other}");
        }
        assert!(return_path(&format!("{INSTALL_PATH}?{}", "a".repeat(5000))).is_none());
    }
}

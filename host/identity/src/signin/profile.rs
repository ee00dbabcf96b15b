//! PAT self-service at `/profile/security/tokens`: a signed-in user mints,
//! lists and revokes personal access tokens for apps whose ReferenceTokens
//! policy allows it (AdministratorsOnly apps: administrators only). A new
//! token's value is shown once; only its hash is stored.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::cookies::{current_session, error_page};
use super::pages::{self, ListedToken};
use crate::oauth::form::Form;
use crate::reference_tokens::{IssueError, IssueRequest};
use crate::service::Identity;
use erpgate_store::records::{GrantKind, IdentitySession, ReferenceTokenPolicy, User};

/// Where the page lives.
pub const TOKENS_PATH: &str = "/profile/security/tokens";

fn date(secs: u64) -> String {
    let days = secs / 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The signed-in user, or a redirect to the profile sign-in.
async fn signed_in(
    state: &Identity,
    headers: &HeaderMap,
) -> Result<(IdentitySession, User), Box<Response>> {
    match current_session(state, headers).await {
        Some(found) => Ok(found),
        None => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_static("/id/account/login"),
            );
            Err(Box::new(r))
        }
    }
}

async fn render(
    state: &Identity,
    session: &IdentitySession,
    user: &User,
    minted: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let apps = match state.store.apps().await {
        Ok(apps) => apps,
        Err(e) => {
            tracing::error!(error = %e, "store failure listing apps");
            return unavailable();
        }
    };
    let now = state.clock.now();
    let names: std::collections::HashMap<&str, &str> = apps
        .iter()
        .map(|a| (a.client_id.as_str(), a.name.as_str()))
        .collect();
    let offered: Vec<(String, String)> = apps
        .iter()
        .filter(|a| {
            a.enabled
                && match a.reference_tokens {
                    ReferenceTokenPolicy::AuthenticatedUsers => true,
                    ReferenceTokenPolicy::AdministratorsOnly => user.is_admin,
                    ReferenceTokenPolicy::None => false,
                }
        })
        .map(|a| (a.client_id.clone(), a.name.clone()))
        .collect();
    let listed: Vec<ListedToken> = state
        .store
        .reference_tokens()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|t| {
            t.kind == GrantKind::Pat
                && t.subject == user.login
                && t.revoked_at.is_none()
                && t.expires_at > now
        })
        .map(|t| ListedToken {
            app: names
                .get(t.client_id.as_str())
                .map_or(t.client_id.clone(), |n| (*n).to_owned()),
            id: t.id,
            description: t.description,
            scopes: t.scopes.to_string(),
            expires: date(t.expires_at),
            last_used: t.last_used_at.map(date),
        })
        .collect();
    let consents: Vec<(String, String, String)> = state
        .store
        .consents_of(&user.login)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let name = names
                .get(c.client_id.as_str())
                .map_or(c.client_id.clone(), |n| (*n).to_owned());
            (c.client_id, name, c.scopes.to_string())
        })
        .collect();
    let csrf = state.signin.profile_csrf(&session.sid);
    let markup = pages::tokens(&pages::Profile {
        login: &user.login,
        csrf: &csrf,
        apps: &offered,
        listed: &listed,
        consents: &consents,
        minted,
        error,
        max_days: state.config.instance.reference_token_max_days,
    });
    pages::respond(status, markup)
}

/// The signed-in user of a profile form whose CSRF token checks out.
async fn form_user(
    state: &Identity,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(IdentitySession, User), Box<Response>> {
    let (session, user) = signed_in(state, headers).await?;
    if !csrf_ok(state, &session, form) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form could not be verified (CSRF).",
        )));
    }
    Ok((session, user))
}

fn unavailable() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Try again in a moment.",
    )
}

fn csrf_ok(state: &Identity, session: &IdentitySession, form: &Form) -> bool {
    let expected = state.signin.profile_csrf(&session.sid);
    form.get("csrf")
        .unwrap_or("")
        .as_bytes()
        .ct_eq(expected.as_bytes())
        .into()
}

/// `GET /profile/security/tokens`.
pub async fn page(State(state): State<Identity>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok((session, user)) => render(&state, &session, &user, None, None, StatusCode::OK).await,
        Err(r) => *r,
    }
}

/// `POST /profile/security/tokens`: mints a PAT for the signed-in user.
pub async fn mint(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    let (session, user) = match form_user(&state, &headers, &form).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let now = state.clock.now();
    let days = form.get("days").and_then(|d| d.trim().parse::<u64>().ok());
    let Some(days) = days.filter(|d| *d > 0) else {
        return render(
            &state,
            &session,
            &user,
            None,
            Some("Enter how many days the token is valid."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let request = IssueRequest {
        client_id: form.get("client_id").unwrap_or("").to_owned(),
        kind: GrantKind::Pat,
        user: Some(user.login.clone()),
        requested_by: Some(user.login.clone()),
        scope: form.get("scope").map(str::to_owned),
        expires_at: now.saturating_add(days.saturating_mul(86_400)),
        description: form.get("description").unwrap_or("").to_owned(),
        jkt: None,
    };
    match state.issue_reference_token(&request, now).await {
        Ok(issued) => {
            tracing::info!(client_id = %request.client_id, sub = %user.login, "PAT minted through self-service");
            render(
                &state,
                &session,
                &user,
                Some(&issued.value),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(IssueError::Store(e)) => {
            tracing::error!(error = %e, "store failure minting a PAT");
            unavailable()
        }
        Err(e) => {
            render(
                &state,
                &session,
                &user,
                None,
                Some(&e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

/// `POST /profile/security/tokens/revoke`: revokes one of the user's PATs.
pub async fn revoke(State(state): State<Identity>, headers: HeaderMap, form: Form) -> Response {
    let (session, user) = match form_user(&state, &headers, &form).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let id = form.get("id").unwrap_or("");
    let owned = state
        .store
        .reference_tokens()
        .await
        .unwrap_or_default()
        .into_iter()
        .any(|t| t.id == id && t.kind == GrantKind::Pat && t.subject == user.login);
    if !owned {
        return render(
            &state,
            &session,
            &user,
            None,
            Some("No such token."),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    match state
        .store
        .revoke_reference_token(id, state.clock.now())
        .await
    {
        Ok(_) => render(&state, &session, &user, None, None, StatusCode::OK).await,
        Err(e) => {
            tracing::error!(error = %e, "store failure revoking a PAT");
            unavailable()
        }
    }
}

/// `POST /profile/security/consents/revoke`: withdraws a remembered consent;
/// the app asks again next time.
pub async fn revoke_consent(
    State(state): State<Identity>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let (session, user) = match form_user(&state, &headers, &form).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let client_id = form.get("client_id").unwrap_or("");
    match state
        .store
        .revoke_consent(&user.login, client_id, state.clock.now())
        .await
    {
        Ok(true) => render(&state, &session, &user, None, None, StatusCode::OK).await,
        Ok(false) => {
            render(
                &state,
                &session,
                &user,
                None,
                Some("No such consent."),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "store failure withdrawing a consent");
            unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::date(0), "1970-01-01");
        assert_eq!(super::date(1_766_505_200), "2025-12-23");
        assert_eq!(super::date(951_782_400), "2000-02-29");
    }
}

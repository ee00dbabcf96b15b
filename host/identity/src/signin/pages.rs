//! The sign-in pages: compiled `maud` templates (every value escaped), no
//! script, labelled fields, and headers that forbid framing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// What a scope lets the app do, in words.
pub fn scope_words(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your sign-in identity)".into(),
        "profile" => "See your name, e-mail address and language".into(),
        "offline_access" => "Stay connected while you are away (refresh tokens)".into(),
        "read" => "Read data in your ERP database".into(),
        "update" => "Create and change data in your ERP database".into(),
        "sec" => "Read and change security settings".into(),
        other => format!("Use the \u{201c}{other}\u{201d} permission"),
    }
}

pub(crate) fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " \u{2014} ERP.net sign-in" }
                style {
                    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
                    "label{display:block;margin-top:1rem;font-weight:600}"
                    "input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
                    "button{margin-top:1.25rem;margin-right:.5rem;padding:.5rem 1.25rem;font-size:1rem}"
                    ".error{color:#a40000;border:1px solid #a40000;padding:.5rem;margin-top:1rem}"
                    ":focus{outline:3px solid #1a5fb4;outline-offset:2px}"
                }
            }
            body {
                main { (body) }
            }
        }
    }
}

/// Renders a page with headers that keep it out of frames, caches and
/// referrers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The sign-in form.
pub fn login(
    app_name: &str,
    request: &str,
    csrf: &str,
    username: &str,
    error: Option<&str>,
) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p { "to continue to " strong { (app_name) } }
            @if let Some(error) = error {
                p .error role="alert" id="login-error" { (error) }
            }
            form method="post" action="/id/account/login" {
                input type="hidden" name="request" value=(request);
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "User name" }
                input type="text" id="username" name="username" value=(username)
                    autocomplete="username" required autofocus[error.is_none()];
                label for="password" { "Password" }
                input type="password" id="password" name="password"
                    autocomplete="current-password" required autofocus[error.is_some()]
                    aria-describedby=[error.map(|_| "login-error")];
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The consent form.
pub fn consent(app_name: &str, login: &str, request: &str, csrf: &str, scopes: &[&str]) -> Markup {
    layout(
        "Allow access",
        html! {
            h1 { "Allow access?" }
            p { strong { (app_name) } " asks, as " strong { (login) } ", to:" }
            ul {
                @for scope in scopes {
                    li { (scope_words(scope)) " " small { "(" code { (scope) } ")" } }
                }
            }
            form method="post" action="/id/connect/consent" {
                input type="hidden" name="request" value=(request);
                input type="hidden" name="csrf" value=(csrf);
                label {
                    input type="checkbox" name="remember" value="yes" checked;
                    " Remember my decision for this application"
                }
                button type="submit" name="decision" value="allow" { "Allow" }
                button type="submit" name="decision" value="deny" { "Deny" }
            }
        },
    )
}

/// An error the user sees instead of being redirected (unknown client,
/// unregistered redirect URI).
pub fn error(title: &str, detail: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p .error role="alert" { (detail) }
        },
    )
}

/// "Sign out?": the confirmation an end-session request without an ID token
/// of the session gets. A GET form back to the endpoint with the request's
/// parameters and the CSRF token.
pub fn confirm_sign_out(action: &str, fields: &[(&str, &str)], csrf: &str) -> Markup {
    layout(
        "Sign out",
        html! {
            h1 { "Sign out of ERP.net?" }
            form method="get" action=(action) {
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        },
    )
}

/// Signed out (no valid post-logout redirect).
pub fn signed_out() -> Markup {
    layout(
        "Signed out",
        html! {
            h1 { "You are signed out" }
            p { "You can close this window." }
        },
    )
}

/// `response_mode=form_post`: a form the browser submits to the client. The
/// one inline script only submits it; without script, the button does.
pub fn form_post(redirect_uri: &str, fields: &[(&str, String)]) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Continue" } }
            body {
                form method="post" action=(redirect_uri) id="response" {
                    @for (name, value) in fields {
                        input type="hidden" name=(name) value=(value);
                    }
                    noscript { button type="submit" { "Continue" } }
                }
                script { "document.getElementById('response').submit()" }
            }
        }
    };
    let mut response = (StatusCode::OK, Html(markup.into_string())).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A reference token as the profile page lists it (never its value).
pub struct ListedToken {
    /// Public id (for revoking).
    pub id: String,
    /// The app's display name.
    pub app: String,
    /// What it is for.
    pub description: String,
    /// The scopes the token grants, space-separated.
    pub scopes: String,
    /// Expiry, as a date.
    pub expires: String,
    /// Last use, as a date, if any.
    pub last_used: Option<String>,
}

/// What the profile page shows.
pub struct Profile<'a> {
    /// The signed-in user.
    pub login: &'a str,
    /// The forms' CSRF token.
    pub csrf: &'a str,
    /// Apps the user may mint PATs for: (client id, name).
    pub apps: &'a [(String, String)],
    /// The user's live PATs.
    pub listed: &'a [ListedToken],
    /// Remembered consents: (client id, name, scopes).
    pub consents: &'a [(String, String, String)],
    /// A just-minted token's value, shown this once.
    pub minted: Option<&'a str>,
    /// An error to show.
    pub error: Option<&'a str>,
    /// The longest PAT lifetime.
    pub max_days: u64,
}

/// `/profile/security/tokens`: the user's PATs, a form to mint one, the value
/// of a just-minted token (shown this once), and the apps the user allowed.
pub fn tokens(p: &Profile<'_>) -> Markup {
    let Profile {
        login,
        csrf,
        apps,
        listed,
        consents,
        minted,
        error,
        max_days,
    } = *p;
    layout(
        "Personal access tokens",
        html! {
            h1 { "Personal access tokens" }
            p { "Signed in as " strong { (login) } ". A token acts as you, with the scopes you give it." }
            @if let Some(value) = minted {
                div .error role="status" style="color:#1b1b1b;border-color:#26a269" {
                    p { strong { "Copy your new token now. It will not be shown again." } }
                    p { code id="new-token" { (value) } }
                }
            }
            @if let Some(error) = error {
                p .error role="alert" { (error) }
            }
            h2 { "Your tokens" }
            @if listed.is_empty() {
                p { "You have no active tokens." }
            } @else {
                table {
                    thead { tr { th { "Application" } th { "Description" } th { "Scopes" } th { "Expires" } th { "Last used" } th {} } }
                    tbody {
                        @for t in listed {
                            tr {
                                td { (t.app) } td { (t.description) } td { (t.scopes) } td { (t.expires) }
                                td { (t.last_used.as_deref().unwrap_or("never")) }
                                td {
                                    form method="post" action="/profile/security/tokens/revoke" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="id" value=(t.id);
                                        button type="submit" aria-label={ "Revoke " (t.description) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "New token" }
            @if apps.is_empty() {
                p { "No application lets you create personal access tokens." }
            } @else {
                form method="post" action="/profile/security/tokens" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="client_id" { "Application" }
                    select id="client_id" name="client_id" {
                        @for (id, name) in apps { option value=(id) { (name) } }
                    }
                    label for="description" { "Description" }
                    input type="text" id="description" name="description" required;
                    label for="scope" { "Scopes (blank: all the application allows)" }
                    input type="text" id="scope" name="scope";
                    label for="days" { "Valid for (days, at most " (max_days) ")" }
                    input type="text" id="days" name="days" value="30" inputmode="numeric" required;
                    button type="submit" { "Create token" }
                }
            }
            h2 { "Applications you allowed" }
            @if consents.is_empty() {
                p { "No application has a remembered consent." }
            } @else {
                ul {
                    @for (id, name, scopes) in consents {
                        li {
                            (name) " \u{2014} " (scopes)
                            form method="post" action="/profile/security/consents/revoke" style="display:inline" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="client_id" value=(id);
                                button type="submit" aria-label={ "Withdraw consent for " (name) } { "Withdraw" }
                            }
                        }
                    }
                }
            }
        },
    )
}

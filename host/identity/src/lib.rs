//! The ERP.net Identity Server emulation: trusted applications, users,
//! client credentials, authorization code + PKCE with login and consent
//! pages, refresh tokens, PAT/SAT reference tokens, introspection,
//! revocation and its feed, discovery, JWKS, signing keys and the admin API.
//!
//! Other crates see it through [`Identity`]: [`router`] serves its HTTP
//! surface, and the service API (`Identity::introspect`,
//! `Identity::revocation_feed`, `Identity::check_password`,
//! `Identity::passwords`, `keys.jwks()`, [`admin::guard`]) is what the
//! emulated ERP API asks in-process. Nothing here knows the API or the
//! gateway.

pub mod accounts;
pub mod admin;
pub mod changes;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod install;
pub mod keys;
pub mod marketplace;
pub mod oauth;
pub mod passwords;
pub mod reference_tokens;
pub mod seed;
pub mod service;
pub mod signin;

pub use passwords::PasswordOutcome;
pub use seed::seed;
pub use service::Identity;

use axum::Router;
use axum::routing::{delete, get, post};

/// What the identity host serves to everyone: `/id/…`, the profile pages,
/// ERP.net's tools and health. The admin API and the metrics are in
/// [`admin_router`].
pub fn router(identity: Identity) -> Router {
    let id = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::discovery),
        )
        .route(
            "/.well-known/openid-configuration/jwks",
            get(discovery::jwks),
        )
        .route("/connect/authorize", get(signin::authorize))
        .route(
            "/account/login",
            get(signin::profile_login).post(signin::login),
        )
        .route("/connect/consent", post(signin::consent))
        .route(
            "/connect/endsession",
            get(signin::endsession).post(signin::endsession),
        )
        .route(
            "/connect/userinfo",
            get(signin::userinfo).post(signin::userinfo),
        )
        .route("/connect/token", post(oauth::token::token))
        .route("/connect/introspect", post(oauth::introspect::introspect))
        .route("/connect/revocation", post(oauth::introspect::revocation))
        .route("/connect/revocation/feed", get(oauth::introspect::feed));
    Router::new()
        .nest("/id", id)
        .route(
            "/.well-known/oauth-authorization-server/id",
            get(discovery::discovery),
        )
        .route(
            signin::profile::TOKENS_PATH,
            get(signin::profile::page).post(signin::profile::mint),
        )
        .route(
            "/profile/security/tokens/revoke",
            post(signin::profile::revoke),
        )
        .route(
            "/profile/security/consents/revoke",
            post(signin::profile::revoke_consent),
        )
        .route(
            install::INSTALL_PATH,
            get(install::install_page).post(install::install),
        )
        .route(
            install::UNINSTALL_PATH,
            get(install::uninstall_page).post(install::uninstall),
        )
        .route(
            "/.well-known/marketplace.json",
            get(install::lifecycle::marketplace_json),
        )
        .route(
            install::lifecycle::PUBLIC_KEY_PATH,
            get(install::lifecycle::public_key),
        )
        .route("/tools/sha256", get(discovery::sha256_tool))
        .route("/tools/auto-discovery", get(discovery::auto_discovery))
        .route("/sys/tools/sha256", get(discovery::sha256_tool))
        .route("/sys/auto-discovery", get(discovery::auto_discovery))
        .route("/health", get(discovery::health))
        .with_state(identity)
}

/// The operator's surface, served on its own listener (loopback by
/// default), never beside the public endpoints: the admin API behind the
/// admin credential, and the metrics.
pub fn admin_router(identity: Identity) -> Router {
    Router::new()
        .route("/metrics", get(admin::metrics_text))
        .route("/health", get(discovery::health))
        .route("/admin/keys/rotate", post(admin::rotate_key))
        .route(
            "/admin/reference-tokens",
            get(admin::list_reference_tokens).post(admin::issue_reference_token),
        )
        .route(
            "/admin/reference-tokens/{id}",
            delete(admin::revoke_reference_token),
        )
        .with_state(identity)
}

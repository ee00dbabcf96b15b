//! The ERP.net Identity Server emulation: trusted applications, users,
//! client credentials, authorization code + PKCE with login and consent
//! pages, refresh tokens, PAT/SAT reference tokens, introspection,
//! revocation and its feed, discovery, JWKS, signing keys and the admin API.
//!
//! Other crates see it through [`Identity`]: [`router`] serves its HTTP
//! surface, and the service API (`Identity::introspect`,
//! `Identity::revocation_feed`, `Identity::check_password`,
//! `Identity::login_throttled`, `keys.jwks()`, [`admin::guard`]) is what the
//! emulated ERP API asks in-process. Nothing here knows the API or the
//! gateway.

pub mod accounts;
pub mod admin;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod keys;
pub mod oauth;
pub mod reference_tokens;
pub mod service;
pub mod signin;

pub use service::{Identity, PasswordCheck};

use axum::Router;
use axum::routing::{delete, get, post};
use erpgate_store::records::{TrustedApp, User};
use erpgate_store::secrets::secret_hash;
use erpgate_store::{Store, StoreError};

use crate::config::Config;

/// Everything the identity host serves: `/id/…`, the profile pages,
/// ERP.net's tools, health, metrics and the admin API.
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
        .route("/tools/sha256", get(discovery::sha256_tool))
        .route("/tools/auto-discovery", get(discovery::auto_discovery))
        .route("/admin/keys/rotate", post(admin::rotate_key))
        .route("/sys/tools/sha256", get(discovery::sha256_tool))
        .route("/sys/auto-discovery", get(discovery::auto_discovery))
        .route("/health", get(discovery::health))
        .route("/metrics", get(admin::metrics_text))
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

/// Creates the configured apps and users that do not exist yet. Existing
/// records are left alone: the store, not the file, is the source of truth.
pub async fn seed(store: &dyn Store, config: &Config, now: u64) -> anyhow::Result<()> {
    for u in &config.users {
        if store.user(&u.login).await?.is_some() {
            continue;
        }
        let password_hash = match &u.password {
            Some(p) => Some(
                accounts::hash_password(p)
                    .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?,
            ),
            None => None,
        };
        let user = User {
            login: u.login.clone(),
            id: u
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            name: u.name.clone().unwrap_or_else(|| u.login.clone()),
            email: u.email.clone().unwrap_or_default(),
            user_type: u.user_type.clone(),
            is_admin: u.is_admin,
            locale: u.locale.clone(),
            password_hash,
        };
        match store.insert_user(&user).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for a in &config.apps {
        let mut app = TrustedApp::new(&a.client_id, &a.name, now);
        app.client_type = a.client_type;
        app.secret_hash = a
            .secret
            .as_deref()
            .map(secret_hash)
            .or_else(|| a.secret_sha256.clone());
        app.redirect_uris = a.redirect_uris.clone();
        app.logout_uris = a.logout_uris.clone();
        app.internal_users_allowed = a.internal_users;
        app.community_users_allowed = a.community_users;
        app.system_user_allowed = a.system_user_allowed;
        app.system_user = a.system_user.clone();
        app.scope = erpgate::ScopeSet::parse(&a.scope)?;
        app.reference_tokens = a.reference_tokens;
        app.basic_auth_allowed = a.basic_auth;
        app.enabled = a.enabled;
        match store.insert_app(&app).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

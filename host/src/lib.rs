//! The erpgate host: an emulation of the ERP.net Identity Server (trusted
//! applications, client credentials, PAT/SAT reference tokens, introspection,
//! revocation, discovery, JWKS) on an embedded store, as one axum app.

pub mod api;
pub mod config;
pub mod endpoints;
pub mod gateway;
pub mod keys;
pub mod model;
pub mod oauth;
pub mod signin;
pub mod stack;
pub mod state;
pub mod store;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, delete, get, post};

use crate::config::Config;
use crate::keys::KeyRing;
use crate::model::{TrustedApp, User, secret_hash};
use crate::state::{AppState, Clock};
use crate::store::{Store, StoreError};

/// The whole HTTP surface, as a function of its state (tests use `oneshot`).
pub fn app(state: AppState) -> Router {
    let id = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(endpoints::discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(endpoints::discovery),
        )
        .route(
            "/.well-known/openid-configuration/jwks",
            get(endpoints::jwks),
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
            get(endpoints::discovery),
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
        .route("/tools/sha256", get(endpoints::sha256_tool))
        .route("/tools/auto-discovery", get(endpoints::auto_discovery))
        .route("/admin/sessions", get(api::admin_sessions))
        .route("/admin/keys/rotate", post(endpoints::admin_rotate_key))
        .route("/admin/sessions/{id}", delete(api::admin_end_session))
        .route("/sys/tools/sha256", get(endpoints::sha256_tool))
        .route("/sys/auto-discovery", get(endpoints::auto_discovery))
        .route("/health", get(endpoints::health))
        .route("/metrics", get(endpoints::metrics_text))
        .route(
            "/admin/reference-tokens",
            get(endpoints::admin_list).post(endpoints::admin_issue),
        )
        .route(
            "/admin/reference-tokens/{id}",
            delete(endpoints::admin_revoke),
        )
        .merge(api_routes(state.clone()))
        .fallback(endpoints::not_found)
        .layer(middleware::from_fn(access_log))
        .with_state(state)
}

/// The emulated ERP API: every route behind the core engine's decision.
fn api_routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/domain/odata/", get(api::odata::service))
        .route("/api/domain/odata/{segment}", any(api::odata::resource))
        .route("/api/domain/login", post(api::legacy::login))
        .route("/api/domain/logout", post(api::legacy::logout))
        .route("/profile/me", get(api::profile_me))
        .route_layer(middleware::from_fn_with_state(state, api::authenticate))
}

/// Logs method, path (never the query: it may hold a secret) and status.
async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    response
}

/// Hashes a password with Argon2id (human passwords only).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Creates the configured apps and users that do not exist yet. Existing
/// records are left alone: the store, not the file, is the source of truth.
pub async fn seed(store: &dyn Store, config: &Config, now: u64) -> anyhow::Result<()> {
    for u in &config.users {
        if store.user(&u.login).await?.is_some() {
            continue;
        }
        let password_hash = match &u.password {
            Some(p) => {
                Some(hash_password(p).map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?)
            }
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
    api::odata::seed(store).await?;
    Ok(())
}

/// The store `config` names: PostgreSQL at `server.database`, else SQLite
/// in `server.data_dir`.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    use anyhow::Context as _;
    config
        .validate_database()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(match &config.server.database {
        Some(url) => Arc::new(
            store::PostgresStore::connect(url)
                .await
                .context("connecting to PostgreSQL (server.database)")?,
        ),
        None => {
            let dir = &config.server.data_dir;
            Arc::new(
                store::SqliteStore::open(dir)
                    .with_context(|| format!("opening the store in {}", dir.display()))?,
            )
        }
    })
}

/// Periodic work: key reload, last-used flush, expired-grant cleanup in batches.
pub fn spawn_background(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Quarter-second ticks: the API's revocation feed and JWKS refresh
        // run on every tick, the rest less often.
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut quarters: u64 = 0;
        loop {
            tick.tick().await;
            quarters += 1;
            api::background(&state).await;
            if !quarters.is_multiple_of(4) {
                continue;
            }
            let seconds = quarters / 4;
            state.flush_usage().await;
            if seconds.is_multiple_of(crate::keys::RELOAD_INTERVAL_S)
                && let Err(e) = state
                    .keys
                    .reload(state.store.as_ref(), state.clock.now())
                    .await
            {
                tracing::warn!(error = %e, "reloading signing keys failed");
            }
            if seconds.is_multiple_of(60) {
                loop {
                    match state.store.purge_expired(state.clock.now(), 500).await {
                        Ok(n) if n > 0 => tracing::debug!(removed = n, "expired grants removed"),
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "cleanup failed");
                            break;
                        }
                    }
                }
            }
        }
    })
}

/// A host listening on a socket.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// Its state.
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    background: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, flushes.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        self.background.abort();
        self.state.flush_usage().await;
    }

    /// Waits until the server ends (Ctrl-C when started with `ctrl_c`).
    pub async fn wait(mut self) {
        let _ = (&mut self.server).await;
        self.background.abort();
        self.state.flush_usage().await;
    }
}

/// Opens the store, seeds it, loads keys, binds, and serves.
pub async fn start(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    admin_credential: &str,
    stop_on_ctrl_c: bool,
) -> anyhow::Result<Running> {
    seed(store.as_ref(), &config, clock.now()).await?;
    let keys = KeyRing::load_or_init(store.as_ref(), clock.now()).await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url(addr);
    let state = AppState::new(store, config, public_url, keys, clock, admin_credential);
    state.signin.share_key().await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = app(state.clone());
    let server = tokio::spawn(async move {
        let shutdown = async move {
            if stop_on_ctrl_c {
                tokio::select! {
                    _ = rx => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            } else {
                let _ = rx.await;
            }
        };
        if let Err(e) = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        {
            tracing::error!(error = %e, "server stopped");
        }
    });
    let background = spawn_background(state.clone());
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        server,
        background,
    })
}

//! Serving the identity host with the emulated ERP API beside it: the
//! composed router, the store it opens, its background work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use erpgate_erp_api::ErpApi;
use erpgate_identity::Identity;
use erpgate_identity::clock::Clock;
use erpgate_identity::config::Config;
use erpgate_identity::keys::{KeyRing, RELOAD_INTERVAL_S};
use erpgate_store::Store;

/// One running host's state: the identity host and the API beside it.
#[derive(Clone)]
pub struct Host {
    /// The Identity Server emulation.
    pub identity: Identity,
    /// The emulated ERP API.
    pub api: ErpApi,
}

impl Host {
    /// Builds both halves from their parts.
    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        public_url: String,
        keys: KeyRing,
        clock: Arc<dyn Clock>,
        admin_credential: &str,
    ) -> Self {
        let identity = Identity::new(store, config, public_url, keys, clock, admin_credential);
        let api = ErpApi::new(identity.clone());
        Self { identity, api }
    }

    /// Writes buffered reference-token uses.
    pub async fn flush_usage(&self) {
        self.identity.flush_usage().await;
    }
}

/// The public HTTP surface, as a function of its state (tests use `oneshot`).
pub fn app(host: Host) -> Router {
    Router::new()
        .merge(erpgate_identity::router(host.identity))
        .merge(erpgate_erp_api::router(host.api))
        .fallback(erpgate_identity::discovery::not_found)
        .layer(middleware::from_fn(access_log))
}

/// The operator's HTTP surface (the admin API and the metrics), served on
/// `server.admin_listen`.
pub fn admin_app(host: Host) -> Router {
    Router::new()
        .merge(erpgate_identity::admin_router(host.identity))
        .merge(erpgate_erp_api::admin_router(host.api))
        .fallback(erpgate_identity::discovery::not_found)
        .layer(middleware::from_fn(access_log))
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

/// Creates the configured apps and users, and the demo OData records, that
/// do not exist yet. Existing records are left alone: the store, not the
/// file, is the source of truth.
pub async fn seed(store: &dyn Store, config: &Config, now: u64) -> anyhow::Result<()> {
    erpgate_identity::seed(store, config, now).await?;
    erpgate_erp_api::odata::seed(store).await?;
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
            erpgate_store::PostgresStore::connect(url)
                .await
                .context("connecting to PostgreSQL (server.database)")?,
        ),
        None => {
            let dir = &config.server.data_dir;
            Arc::new(
                erpgate_store::SqliteStore::open(dir)
                    .with_context(|| format!("opening the store in {}", dir.display()))?,
            )
        }
    })
}

/// Periodic work: key reload, last-used flush, expired-grant cleanup in batches.
pub fn spawn_background(host: Host) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Quarter-second ticks: the API's revocation feed and JWKS refresh
        // run on every tick, the rest less often.
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut quarters: u64 = 0;
        loop {
            tick.tick().await;
            quarters += 1;
            erpgate_erp_api::background(&host.api).await;
            if !quarters.is_multiple_of(4) {
                continue;
            }
            let seconds = quarters / 4;
            host.flush_usage().await;
            if seconds.is_multiple_of(RELOAD_INTERVAL_S)
                && let Err(e) = host
                    .identity
                    .keys
                    .reload(host.identity.store.as_ref(), host.identity.clock.now())
                    .await
            {
                tracing::warn!(error = %e, "reloading signing keys failed");
            }
            if seconds.is_multiple_of(60) {
                let now = host.identity.clock.now();
                while host.identity.expire_sessions(now, 500).await == 500 {}
                loop {
                    match host
                        .identity
                        .store
                        .purge_expired(host.identity.clock.now(), 500)
                        .await
                    {
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
    /// The operator's listener: the admin API and the metrics.
    pub admin_addr: SocketAddr,
    /// The identity and ERP API state its handlers share.
    pub state: Host,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    admin: tokio::task::JoinHandle<()>,
    background: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, flushes.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        self.admin.abort();
        self.background.abort();
        self.state.flush_usage().await;
    }

    /// The operator's base URL, `http://{admin_addr}`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// Waits until the server ends (Ctrl-C when started with `ctrl_c`).
    pub async fn wait(mut self) {
        let _ = (&mut self.server).await;
        self.admin.abort();
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
    let admin_listener = tokio::net::TcpListener::bind(config.server.admin_listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let public_url = config.public_url(addr);
    let state = Host::new(store, config, public_url, keys, clock, admin_credential);
    state.identity.signin.share_key().await?;
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
    let admin_router = admin_app(state.clone());
    let admin = tokio::spawn(async move {
        if let Err(e) = axum::serve(admin_listener, admin_router).await {
            tracing::error!(error = %e, "admin listener stopped");
        }
    });
    let background = spawn_background(state.clone());
    Ok(Running {
        addr,
        admin_addr,
        state,
        shutdown: Some(tx),
        server,
        admin,
        background,
    })
}

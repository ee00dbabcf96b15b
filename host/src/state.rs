//! Shared state of one running host.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::Config;
use crate::keys::KeyRing;
use crate::model::secret_hash;
use crate::store::Store;

/// Where the host reads time. Tests use [`ManualClock`].
pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// Unix seconds.
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `secs`.
    pub fn at(secs: u64) -> Self {
        Self(AtomicU64::new(secs.saturating_mul(1000)))
    }
    /// Moves forward.
    pub fn advance(&self, secs: u64) {
        self.0
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The process-wide Prometheus recorder (the `metrics` facade is global).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embedding the
            // host); then this handle renders an empty registry.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// The shared parts.
pub struct Inner {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// The validated configuration.
    pub config: Config,
    /// `{public_url}/id`.
    pub issuer: String,
    /// The base URL clients use.
    pub public_url: String,
    /// Signing keys.
    pub keys: KeyRing,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// SHA-256 (base64) of the admin credential.
    pub admin_hash: String,
    /// API resources: name → secret hash.
    pub api_resources: HashMap<String, String>,
    /// Reference-token uses not yet written: hash → Unix seconds.
    pub usage: Mutex<HashMap<String, u64>>,
    /// Prometheus rendering.
    pub metrics: PrometheusHandle,
    /// Interactive sign-in state (started sign-ins, throttling, cookie key).
    pub signin: crate::signin::SigninState,
    /// The emulated ERP API: its engine and the license table.
    pub api: crate::api::Api,
}

impl AppState {
    /// Builds state from its parts.
    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        public_url: String,
        keys: KeyRing,
        clock: Arc<dyn Clock>,
        admin_credential: &str,
    ) -> Self {
        let api_resources = config
            .api_resources
            .iter()
            .map(|r| {
                let hash = match (&r.secret, &r.secret_sha256) {
                    (Some(s), _) => secret_hash(s),
                    (None, Some(h)) => h.clone(),
                    (None, None) => String::new(),
                };
                (r.name.clone(), hash)
            })
            .collect();
        let issuer = format!("{public_url}/id");
        let api = crate::api::Api::new(
            &issuer,
            crate::model::License {
                slots: config.instance.license_slots,
                reserved_accounts: config.instance.reserved_accounts.clone(),
            },
            store.clone(),
        );
        let signin = crate::signin::SigninState::new(store.clone());
        Self(Arc::new(Inner {
            store,
            issuer,
            api,
            public_url,
            config,
            keys,
            clock,
            admin_hash: secret_hash(admin_credential),
            api_resources,
            usage: Mutex::new(HashMap::new()),
            metrics: metrics_handle(),
            signin,
        }))
    }

    /// Records that a reference token was used (written in batches).
    pub fn note_use(&self, hash: &str, now: u64) {
        if let Ok(mut usage) = self.0.usage.lock() {
            usage.insert(hash.to_owned(), now);
        }
    }

    /// Writes buffered last-used times.
    pub async fn flush_usage(&self) {
        let batch: Vec<(String, u64)> = match self.0.usage.lock() {
            Ok(mut usage) => usage.drain().collect(),
            Err(_) => return,
        };
        if !batch.is_empty()
            && let Err(e) = self.0.store.record_token_use(&batch).await
        {
            tracing::warn!(error = %e, "could not record reference-token use");
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

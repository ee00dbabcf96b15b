//! The identity host's state and its service API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use erpgate_store::Store;
use erpgate_store::records::IdentitySession;
use erpgate_store::secrets::secret_hash;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sha2::{Digest as _, Sha256};

use crate::accounts::VerifiedPasswords;
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::marketplace::MarketplaceKey;
use crate::passwords::{PasswordGate, PasswordOutcome};
use crate::signin::SigninState;

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

/// The Identity Server emulation: the state every identity endpoint reads,
/// and the service API the emulated ERP API calls (introspection, the
/// revocation feed, the JWKS, legacy password checks). Cheap to clone.
#[derive(Clone)]
pub struct Identity(Arc<IdentityCore>);

/// What one running identity host holds.
pub struct IdentityCore {
    /// Where apps, users, tokens, sessions, revocations and signing keys live
    /// (SQLite or PostgreSQL; memory in tests). Replicas share it.
    pub store: Arc<dyn Store>,
    /// The validated configuration.
    pub config: Config,
    /// `{public_url}/id`.
    pub issuer: String,
    /// The base URL clients use.
    pub public_url: String,
    /// The RS256 keys that sign tokens and make up the JWKS, reloaded from
    /// `store` so every replica signs and publishes the same ones.
    pub keys: KeyRing,
    /// Where every endpoint reads `now`: the system clock, or a
    /// [`ManualClock`](crate::clock::ManualClock) that tests move by hand.
    pub clock: Arc<dyn Clock>,
    /// SHA-256 (base64) of the admin credential.
    pub admin_hash: String,
    /// API resources: name → secret hash.
    pub api_resources: HashMap<String, String>,
    /// Reference-token uses not yet written: hash → Unix seconds.
    pub usage: Mutex<HashMap<String, u64>>,
    /// The process-wide Prometheus recorder ([`metrics_handle`]); `GET /metrics`
    /// renders it.
    pub metrics: PrometheusHandle,
    /// Interactive sign-in state (started sign-ins, throttling, cookie key).
    pub signin: SigninState,
    /// Legacy Basic passwords already checked with Argon2 (digests only).
    pub verified_passwords: VerifiedPasswords,
    /// The door every human password goes through: the guess limits and
    /// the bound on Argon2 runs.
    pub passwords: PasswordGate,
    /// The key that signs app lifecycle events (installation links).
    pub marketplace: MarketplaceKey,
    /// DPoP proofs the token endpoint has seen (single use).
    pub dpop_replays: crate::oauth::replay::ReplayCache,
}

impl Identity {
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
        let signin = SigninState::new(store.clone());
        let marketplace = MarketplaceKey::in_dir(&config.server.data_dir);
        // Validated when the configuration was read; none trusted otherwise.
        let passwords = PasswordGate::new(
            store.clone(),
            config.server.concurrent_password_checks,
            config.trusted_proxies().unwrap_or_default(),
        );
        Self(Arc::new(IdentityCore {
            store,
            issuer,
            public_url,
            config,
            keys,
            clock,
            admin_hash: secret_hash(admin_credential),
            api_resources,
            usage: Mutex::new(HashMap::new()),
            metrics: metrics_handle(),
            signin,
            verified_passwords: VerifiedPasswords::default(),
            passwords,
            marketplace,
            dpop_replays: crate::oauth::replay::ReplayCache::default(),
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

impl std::ops::Deref for Identity {
    type Target = IdentityCore;
    fn deref(&self) -> &IdentityCore {
        &self.0
    }
}

impl Identity {
    /// Whether an identity session is live at `now`: not ended, and signed
    /// in to within `instance.session_lifetime_s`.
    pub fn session_live(&self, session: &IdentitySession, now: u64) -> bool {
        session.ended_at.is_none()
            && now
                < session
                    .auth_time
                    .saturating_add(self.config.instance.session_lifetime_s)
    }

    /// Ends up to `batch` identity sessions past their lifetime, as a
    /// sign-out does (their refresh tokens die, a `sid` event reaches the
    /// edges); returns how many.
    pub async fn expire_sessions(&self, now: u64, batch: usize) -> usize {
        let cutoff = now.saturating_sub(self.config.instance.session_lifetime_s);
        let event_expires_at = now.saturating_add(self.config.instance.access_token_lifetime_s);
        let expired = match self.store.expired_sessions(cutoff, batch).await {
            Ok(sids) => sids,
            Err(e) => {
                tracing::warn!(error = %e, "could not list expired sessions");
                return 0;
            }
        };
        let mut ended = 0;
        for sid in expired {
            match self.store.end_session(&sid, now, event_expires_at).await {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not end an expired session"),
            }
        }
        ended
    }

    /// Checks `password` for `login` on behalf of the app `client_id`, the
    /// way both legacy schemes do, from the client at `address`. Basic sends
    /// the password on every call: a password that passed Argon2 for this
    /// app, user and stored hash is remembered (a password change misses),
    /// and only what is not remembered goes through the limits of
    /// [`PasswordGate`].
    pub async fn check_password(
        &self,
        client_id: &str,
        login: &str,
        password: &str,
        address: Option<std::net::IpAddr>,
        now: u64,
    ) -> PasswordOutcome {
        let Ok(user) = self.store.user(login).await else {
            return PasswordOutcome::Unavailable;
        };
        let proof = user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref())
            .map(|stored| {
                let mut h = Sha256::new();
                for part in [client_id, login, password, stored] {
                    h.update(part.as_bytes());
                    h.update([0u8]);
                }
                <[u8; 32]>::from(h.finalize())
            });
        if let (Some(user), Some(p)) = (&user, proof)
            && self.verified_passwords.contains(&p)
        {
            return PasswordOutcome::Accepted(user.clone());
        }
        let outcome = self
            .passwords
            .check_user(login, user, password, address, now)
            .await;
        if let (PasswordOutcome::Accepted(user), Some(p)) = (&outcome, proof)
            && user.password_hash.is_some()
        {
            self.verified_passwords.insert(p);
        }
        outcome
    }
}

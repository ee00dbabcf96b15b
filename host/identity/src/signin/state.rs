//! Sign-in state in the store: sign-ins between their pages and the SSO
//! cookie key.

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use erpgate_store::Store;

/// Sign-in state, kept in the store so that any replica can serve any page
/// of a sign-in: started sign-ins and the key that
/// signs session cookies (made by the first host to start on the store).
pub struct SigninState {
    store: Arc<dyn Store>,
    cookie_key: RwLock<[u8; 32]>,
}

/// Whether a sign-in id is a sealed one ([`SigninState::seal`]); stored
/// ones are hex.
pub(crate) fn is_sealed(id: &str) -> bool {
    id.contains('.')
}

/// The store's name for the cookie key.
const COOKIE_KEY_NAME: &str = "sso-cookie-key";

impl SigninState {
    /// State in `store`, with a key of this process until [`Self::share_key`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        let mut cookie_key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut cookie_key);
        Self {
            store,
            cookie_key: RwLock::new(cookie_key),
        }
    }

    /// Adopts the cookie key every host on this store uses; the first to
    /// start stores its own.
    pub async fn share_key(&self) -> Result<(), erpgate_store::StoreError> {
        let mine = self.key().map(hex::encode).unwrap_or_default();
        let shared = self.store.shared_secret(COOKIE_KEY_NAME, &mine).await?;
        let key: [u8; 32] = hex::decode(&shared)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| erpgate_store::StoreError::Corrupt(COOKIE_KEY_NAME.into()))?;
        if let Ok(mut slot) = self.cookie_key.write() {
            *slot = key;
        }
        Ok(())
    }

    pub(crate) fn key(&self) -> Option<[u8; 32]> {
        self.cookie_key.read().ok().map(|k| *k)
    }

    /// Stores a sign-in between its pages until `expires_at`; false (and
    /// logged) when it could not be stored.
    pub(crate) async fn remember<T: serde::Serialize>(
        &self,
        id: &str,
        value: &T,
        expires_at: u64,
    ) -> bool {
        let stored = match serde_json::to_string(value) {
            Ok(json) => self
                .store
                .put_signin(id, &json, expires_at)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        stored
            .map_err(|e| tracing::error!(error = %e, "could not store a sign-in"))
            .is_ok()
    }

    /// A live sign-in stored by [`Self::remember`].
    pub(crate) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        now: u64,
    ) -> Option<T> {
        let json = self
            .store
            .signin(id, now)
            .await
            .map_err(|e| tracing::error!(error = %e, "could not read a sign-in"))
            .ok()??;
        serde_json::from_str(&json).ok()
    }

    /// Removes a sign-in; true for the one caller that removed it live.
    pub(crate) async fn take(&self, id: &str, now: u64) -> bool {
        match self.store.take_signin(id, now).await {
            Ok(taken) => taken.is_some(),
            Err(e) => {
                tracing::error!(error = %e, "could not remove a sign-in");
                false
            }
        }
    }

    /// Removes a stored sign-in; a sealed one ([`Self::seal`]) was never
    /// stored, so nothing is written for it.
    pub(crate) async fn forget(&self, id: &str) {
        if !is_sealed(id) {
            self.take(id, 0).await;
        }
    }

    /// A sign-in before anyone has authenticated, carried by the browser in
    /// the form instead of stored: `{base64url(JSON)}.{HMAC}`. Pages anyone
    /// can load write nothing.
    pub(crate) fn seal<T: serde::Serialize>(&self, value: &T) -> Option<String> {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(value).ok()?);
        let tag = self
            .mac(&format!("pending:{payload}"))?
            .finalize()
            .into_bytes();
        Some(format!("{payload}.{}", hex::encode(tag)))
    }

    /// What [`Self::seal`] sealed, if the MAC holds.
    pub(crate) fn open<T: serde::de::DeserializeOwned>(&self, sealed: &str) -> Option<T> {
        use base64::Engine as _;
        let (payload, tag) = sealed.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        self.mac(&format!("pending:{payload}"))?
            .verify_slice(&tag)
            .ok()?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        serde_json::from_slice(&json).ok()
    }

    pub(crate) fn mac(&self, sid: &str) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key()?).ok()?;
        mac.update(sid.as_bytes());
        Some(mac)
    }

    /// `sid.mac`: the sid alone is in every token, so it cannot be the cookie.
    pub fn session_cookie_value(&self, sid: &str) -> String {
        let tag = self
            .mac(sid)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default();
        format!("{sid}.{tag}")
    }

    /// The CSRF token of the profile forms: bound to the session, stateless.
    pub(crate) fn profile_csrf(&self, sid: &str) -> String {
        self.mac(&format!("profile-csrf:{sid}"))
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// The `sid` of a session cookie value whose MAC holds.
    pub fn sid_from_cookie<'a>(&self, value: &'a str) -> Option<&'a str> {
        let (sid, tag) = value.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        self.mac(sid)?.verify_slice(&tag).ok()?;
        Some(sid)
    }
}

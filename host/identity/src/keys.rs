//! Signing keys: RS256, `kid` of 32 uppercase hex characters, persisted in the
//! store. Rotation adds a key; retired keys stay in the JWKS until the tokens
//! they signed have expired. Every replica and CLI process sees the same keys
//! because they live in the store; servers reload them every few seconds.

use std::sync::RwLock;

use erpgate::{Algorithm, KeySet};
use jwt_simple::prelude::{RS256KeyPair, RSAKeyPairLike as _};
use serde_json::{Value, json};

use erpgate_store::records::SigningKeyRecord;
use erpgate_store::{Store, StoreError};

/// A random identifier of `bytes` random bytes, uppercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rng(), buf.as_mut_slice());
    hex::encode_upper(buf)
}

/// Generates a new RSA-2048 signing key.
pub fn generate(now: u64) -> Result<SigningKeyRecord, KeyError> {
    let pair = RS256KeyPair::generate(2048).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let private_pem = pair.to_pem().map_err(|e| KeyError::Crypto(e.to_string()))?;
    Ok(SigningKeyRecord {
        kid: random_hex(16),
        private_pem,
        created_at: now,
        retire_at: None,
    })
}

/// Key handling failures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key generation or parsing failed.
    #[error("key material: {0}")]
    Crypto(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No key is available for signing.
    #[error("no active signing key")]
    NoActiveKey,
}

struct Loaded {
    /// Published keys with the time each starts signing, newest first.
    signers: Vec<(u64, RS256KeyPair)>,
    jwks: Value,
    verify: KeySet,
    kids: Vec<String>,
}

/// The keys in use, reloaded from the store.
pub struct KeyRing {
    loaded: RwLock<Loaded>,
}

fn build(records: &[SigningKeyRecord], now: u64) -> Result<Loaded, KeyError> {
    let mut signers = Vec::new();
    let mut jwks = Vec::new();
    let mut kids = Vec::new();
    // Newest first. Every key not yet retired is published; a token is
    // signed by the newest one whose signing time has come at its `iat`. A
    // rotated key is published before it signs (see `rotate`), so every
    // replica verifies its tokens.
    for rec in records {
        if rec.retire_at.is_some_and(|t| t <= now) {
            continue;
        }
        let pair = RS256KeyPair::from_pem(&rec.private_pem)
            .map_err(|e| KeyError::Crypto(e.to_string()))?
            .with_key_id(&rec.kid);
        let components = pair.public_key().to_components();
        jwks.push(json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": rec.kid,
            "n": erpgate::encode_b64url(&components.n),
            "e": erpgate::encode_b64url(&components.e),
        }));
        kids.push(rec.kid.clone());
        signers.push((rec.created_at, pair));
    }
    let jwks = json!({ "keys": jwks });
    let verify = KeySet::from_jwks(jwks.to_string().as_bytes(), &[Algorithm::RS256])
        .map_err(|e| KeyError::Crypto(e.to_string()))?;
    Ok(Loaded {
        signers,
        jwks,
        verify,
        kids,
    })
}

impl KeyRing {
    /// Loads the keys, creating the first one if the store has none.
    pub async fn load_or_init(store: &dyn Store, now: u64) -> Result<Self, KeyError> {
        if store.signing_keys().await?.is_empty() {
            store.insert_first_signing_key(&generate(now)?).await?;
        }
        let loaded = build(&store.signing_keys().await?, now)?;
        Ok(Self {
            loaded: RwLock::new(loaded),
        })
    }

    /// Re-reads the keys (a rotation by another process or replica).
    pub async fn reload(&self, store: &dyn Store, now: u64) -> Result<(), KeyError> {
        let fresh = build(&store.signing_keys().await?, now)?;
        let changed = {
            let current = self.loaded.read().map_err(|_| KeyError::NoActiveKey)?;
            current.kids != fresh.kids
        };
        if changed {
            let mut slot = self.loaded.write().map_err(|_| KeyError::NoActiveKey)?;
            *slot = fresh;
        }
        Ok(())
    }

    /// Signs claims with the key in force at their `iat` (`typ` as given).
    pub fn sign<C: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        claims: jwt_simple::claims::JWTClaims<C>,
        typ: &str,
    ) -> Result<String, KeyError> {
        let loaded = self.loaded.read().map_err(|_| KeyError::NoActiveKey)?;
        let issued_at = claims.issued_at.map_or(0, |t| t.as_secs());
        let signer = loaded
            .signers
            .iter()
            .find(|(from, _)| *from <= issued_at)
            .or_else(|| loaded.signers.last())
            .map(|(_, pair)| pair)
            .ok_or(KeyError::NoActiveKey)?;
        let options = jwt_simple::common::HeaderOptions {
            signature_type: Some(typ.to_owned()),
            ..Default::default()
        };
        signer
            .sign_with_options(claims, &options)
            .map_err(|e| KeyError::Crypto(e.to_string()))
    }

    /// The public JWKS document.
    pub fn jwks(&self) -> Value {
        self.loaded
            .read()
            .map(|l| l.jwks.clone())
            .unwrap_or_else(|_| json!({ "keys": [] }))
    }

    /// The published keys as the core's key set, for verifying our own tokens.
    pub fn key_set(&self) -> KeySet {
        self.loaded
            .read()
            .map(|l| l.verify.clone())
            .unwrap_or_default()
    }
}

/// How often every host re-reads the signing keys from the store.
pub const RELOAD_INTERVAL_S: u64 = 5;
/// How long a rotated key is published before it signs: two reload
/// intervals, so every replica serves it in its JWKS (and verifies with it)
/// before any replica issues a token under it.
pub const PUBLISH_BEFORE_SIGNING_S: u64 = 2 * RELOAD_INTERVAL_S;

/// Rotates: a new key is published at once and signs from
/// `now + sign_after_s`; the keys signing until then stay published until
/// `retire_after_s` (the longest token lifetime plus leeway) has passed.
/// Returns the new `kid`.
pub async fn rotate(
    store: &dyn Store,
    now: u64,
    sign_after_s: u64,
    retire_after_s: u64,
) -> Result<String, KeyError> {
    let key = generate(now.saturating_add(sign_after_s))?;
    let kid = key.kid.clone();
    store
        .rotate_signing_key(
            &key,
            now.saturating_add(sign_after_s)
                .saturating_add(retire_after_s),
        )
        .await?;
    Ok(kid)
}

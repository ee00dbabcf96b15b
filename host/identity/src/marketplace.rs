//! The emulator's marketplace key: what signs app lifecycle events (see
//! `install::lifecycle`), where ERP.net's real marketplace key would.

use std::path::PathBuf;

use base64::Engine as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::{RsaPrivateKey, pkcs1v15};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::OnceCell;

/// The envelope's `schema`.
pub const SCHEMA: &str = "erpnet.appLifecycleEvent.v2";

/// The emulator's marketplace signing key: RSA-2048, made on first use and
/// kept in `{data_dir}/marketplace-key.pem` (mode 0600), so receivers that
/// pinned it keep verifying across restarts.
pub struct MarketplaceKey {
    file: PathBuf,
    key: OnceCell<RsaPrivateKey>,
}

impl MarketplaceKey {
    /// The key kept in `data_dir`.
    pub fn in_dir(data_dir: &std::path::Path) -> Self {
        Self {
            file: data_dir.join("marketplace-key.pem"),
            key: OnceCell::new(),
        }
    }

    async fn key(&self) -> anyhow::Result<&RsaPrivateKey> {
        self.key
            .get_or_try_init(|| {
                let file = self.file.clone();
                async move {
                    tokio::task::spawn_blocking(move || load_or_make(&file))
                        .await
                        .map_err(|e| anyhow::anyhow!("making the marketplace key: {e}"))?
                }
            })
            .await
    }

    /// The public key, SPKI PEM.
    pub async fn public_pem(&self) -> anyhow::Result<String> {
        Ok(self
            .key()
            .await?
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)?)
    }

    /// The envelope for `payload`, signed.
    pub async fn envelope(&self, payload: &Value) -> anyhow::Result<Value> {
        let key = self.key().await?.clone();
        let signed = serde_json::to_vec(payload)?;
        let signature = pkcs1v15::SigningKey::<Sha256>::new(key)
            .sign_with_rng(&mut rsa::rand_core::OsRng, &signed)
            .to_vec();
        Ok(json!({
            "schema": SCHEMA,
            "signature": base64::engine::general_purpose::STANDARD.encode(signature),
            "payload": payload,
        }))
    }
}

fn load_or_make(file: &std::path::Path) -> anyhow::Result<RsaPrivateKey> {
    if let Ok(pem) = std::fs::read_to_string(file) {
        return Ok(RsaPrivateKey::from_pkcs8_pem(&pem)?);
    }
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF)?;
    if let Err(e) = write_private(file, pem.as_bytes()) {
        tracing::warn!(error = %e, file = %file.display(), "the marketplace key is kept in memory only: receivers must fetch it again after a restart");
    }
    Ok(key)
}

fn write_private(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::Verifier as _;

    #[tokio::test]
    async fn signed_over_the_compact_payload_and_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let key = MarketplaceKey::in_dir(dir.path());
        let payload = json!({"event": "installed", "applicationUri": "a/b", "n": 1});
        let envelope = key.envelope(&payload).await.unwrap();
        assert_eq!(envelope["schema"], SCHEMA);
        let signature = base64::engine::general_purpose::STANDARD
            .decode(envelope["signature"].as_str().unwrap())
            .unwrap();
        let public = key.key().await.unwrap().to_public_key();
        let verifier = pkcs1v15::VerifyingKey::<Sha256>::new(public);
        let signature = pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
        let compact = br#"{"applicationUri":"a/b","event":"installed","n":1}"#;
        assert!(verifier.verify(compact, &signature).is_ok());
        assert!(verifier.verify(b"{}", &signature).is_err());
        let again = MarketplaceKey::in_dir(dir.path());
        assert_eq!(
            again.public_pem().await.unwrap(),
            key.public_pem().await.unwrap()
        );
    }
}

//! App lifecycle events, as ERP.net's marketplace sends them: after an
//! install or uninstall, a signed envelope is POSTed to the app's
//! `redirectUri`:
//!
//! ```json
//! {"schema": "erpnet.appLifecycleEvent.v2",
//!  "signature": "<base64 RSA-SHA256 over the compact JSON of payload>",
//!  "payload": {"applicationName": "…", "applicationUri": "…",
//!              "clientSecret": "…", "clientType": "Confidential",
//!              "event": "installed", "eventId": "…", "instance": "https://…",
//!              "occurredAt": 1766505147, "referenceToken": "enrt_…",
//!              "scope": "read update"}}
//! ```
//!
//! `clientSecret` is present when the install generated one,
//! `referenceToken` (a SAT) when it asked for `serviceAccess=referenceToken`.
//! The payload is written compactly, its members in lexicographic order, so
//! a receiver that parses it and writes it back compactly (JavaScript's
//! `JSON.stringify`, for one) gets the signed bytes. The signing key is the
//! emulator's own marketplace key: `/.well-known/marketplace.json` names
//! its public key (`endpoints.public_key`), where ERP.net's names the real
//! marketplace's.

use std::path::PathBuf;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::{RsaPrivateKey, pkcs1v15};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::service::Identity;

/// The envelope's `schema`.
pub const SCHEMA: &str = "erpnet.appLifecycleEvent.v2";
/// Where the public key is published, under the public URL.
pub const PUBLIC_KEY_PATH: &str = "/.well-known/marketplace/public-key.pem";
/// How long a receiver has to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// What happened to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// The app has no `redirectUri` to deliver to.
    NoAddress,
    /// The receiver answered otherwise, or could not be reached.
    Failed(String),
}

/// Signs `payload` and POSTs the envelope to `to`. Plain `http` only: the
/// emulator carries no TLS client, and its apps under test run locally.
pub async fn deliver(state: &Identity, to: Option<&str>, payload: Value) -> Delivery {
    let Some(to) = to else {
        return Delivery::NoAddress;
    };
    if !to.starts_with("http://") {
        return Delivery::Failed(
            "the emulator delivers lifecycle events over plain http only".into(),
        );
    }
    let envelope = match state.marketplace.envelope(&payload).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "could not sign a lifecycle event");
            return Delivery::Failed("the event could not be signed".into());
        }
    };
    let request = hyper::Request::post(to)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(envelope.to_string())));
    let request = match request {
        Ok(r) => r,
        Err(_) => return Delivery::Failed("the address is not a valid URL".into()),
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let sent = tokio::time::timeout(DELIVERY_TIMEOUT, async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        // Read (and drop) the reply so the connection closes cleanly.
        let _ = response.into_body().collect().await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    })
    .await;
    let outcome = match sent {
        Ok(Ok(status)) if (200..300).contains(&status) => Delivery::Delivered(status),
        Ok(Ok(status)) => Delivery::Failed(format!("the app answered HTTP {status}")),
        Ok(Err(e)) => Delivery::Failed(format!("the app could not be reached: {e}")),
        Err(_) => Delivery::Failed("the app did not answer within 5 s".into()),
    };
    tracing::info!(event = %payload["event"], outcome = ?outcome, "lifecycle event");
    outcome
}

/// `GET /.well-known/marketplace.json`.
pub async fn marketplace_json(State(state): State<Identity>) -> Json<Value> {
    Json(json!({
        "issuer": state.public_url,
        "schemas": [SCHEMA],
        "signature_algorithm": "RSA-SHA256",
        "endpoints": { "public_key": format!("{}{PUBLIC_KEY_PATH}", state.public_url) },
    }))
}

/// `GET /.well-known/marketplace/public-key.pem`.
pub async fn public_key(State(state): State<Identity>) -> Response {
    match state.marketplace.public_pem().await {
        Ok(pem) => {
            let mut r = pem.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "marketplace key unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
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

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

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::marketplace::SCHEMA;
use crate::service::Identity;

/// Where the public key is published, under the public URL.
pub const PUBLIC_KEY_PATH: &str = "/.well-known/marketplace/public-key.pem";
/// How long a receiver has to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

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
    let kind = payload.get("event").and_then(Value::as_str).unwrap_or("");
    tracing::info!(event = kind, outcome = ?outcome, "lifecycle event");
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

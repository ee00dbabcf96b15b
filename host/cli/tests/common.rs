//! Shared helpers for the host's endpoint tests.
#![allow(
    missing_docs,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use erpgate_identity::config::Config;
use erpgate_identity::keys::KeyRing;

use erpgate_identity::clock::{Clock, ManualClock};
use erpgate_store::{MemoryStore, Store};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

pub const NOW: u64 = 1_795_000_000;
pub const ADMIN: &str = "test-admin-credential";
pub const BASE: &str = "https://demo.my.erp.net";

pub struct Host {
    pub state: erpgate_cli::Host,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
}

pub async fn host() -> Host {
    let mut config = Config::demo();
    config.server.public_url = Some(BASE.into());
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(NOW));
    erpgate_cli::seed(store.as_ref(), &config, NOW)
        .await
        .unwrap();
    let keys = KeyRing::load_or_init(store.as_ref(), NOW).await.unwrap();
    let state = erpgate_cli::Host::new(
        store.clone(),
        config,
        BASE.into(),
        keys,
        clock.clone(),
        ADMIN,
    );
    Host {
        state,
        store,
        clock,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

impl Host {
    /// Sends to the listener that serves the path: the admin API and the
    /// metrics to the operator's, everything else to the public one.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let path = req.uri().path();
        let app = if path.starts_with("/admin/") || path == "/metrics" {
            erpgate_cli::admin_app(self.state.clone())
        } else {
            erpgate_cli::app(self.state.clone())
        };
        let response = app.oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn form(&self, path: &str, basic: Option<(&str, &str)>, body: &str) -> Reply {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            req = req.header(header::AUTHORIZATION, basic_header(id, secret));
        }
        self.send(req.body(Body::from(body.to_owned())).unwrap())
            .await
    }

    pub async fn token(&self, client: &str, secret: &str, scope: Option<&str>) -> Reply {
        let mut body = "grant_type=client_credentials".to_owned();
        if let Some(s) = scope {
            body.push_str(&format!("&scope={}", s.replace(' ', "+")));
        }
        self.form("/id/connect/token", Some((client, secret)), &body)
            .await
    }

    pub async fn service_token(&self) -> String {
        let r = self
            .token("demo.service", "demo-service-secret", None)
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let r = self
            .form(
                "/id/connect/introspect",
                Some(("erpgate.edge", "demo-edge-secret")),
                &format!("token={token}"),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json");
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send(req.body(body).unwrap()).await
    }

    pub async fn issue(&self, body: Value) -> Reply {
        self.admin("POST", "/admin/reference-tokens", Some(body))
            .await
    }

    pub async fn pat(&self, user: &str, scope: &str) -> String {
        let r = self
            .issue(serde_json::json!({"client_id":"demo.reports","kind":"pat","user":user,"scope":scope,"expires_in_days":30,"description":"test"}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["token"].as_str().unwrap().to_owned()
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    pub async fn store_snapshot(&self) -> (usize, usize, usize) {
        (
            self.store.reference_tokens().await.unwrap().len(),
            self.store.feed(0, 10_000).await.unwrap().len(),
            self.store.apps().await.unwrap().len(),
        )
    }
}

pub fn basic_header(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Decodes a JWT's header and claims without verifying.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let h = erpgate::decode_b64url(parts.next().unwrap()).unwrap();
    let c = erpgate::decode_b64url(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&c).unwrap(),
    )
}

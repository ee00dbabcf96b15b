//! `erpgate up`: the identity host, a placeholder for the ERP API, and the
//! gateway running the real filter in front of it, all on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};

use crate::config::Config;
use crate::gateway::server::{self, Gateway, GatewayConfig};
use crate::state::SystemClock;
use crate::store::SqliteStore;
use crate::{Running, start};

/// The introspection client the gateway authenticates as (the demo API resource).
pub const EDGE_CLIENT: (&str, &str) = ("erpgate.edge", "demo-edge-secret");

/// Where `scripts/build-filter` writes the filter.
pub fn default_filter_path(repo: &Path) -> PathBuf {
    repo.join("deploy/envoy/erpgate_filter.wasm")
}

/// The plugin configuration for a host at `identity`: `policies/erpnet.json`
/// with the host's issuer, the `identity` cluster, and the edge's credentials.
pub fn plugin_config(issuer: &str, jwks_cooldown_s: u64) -> Value {
    let mut policy: Value =
        serde_json::from_str(include_str!("../../policies/erpnet.json")).unwrap_or(Value::Null);
    if let Some(first) = policy
        .pointer_mut("/issuers/0")
        .and_then(Value::as_object_mut)
    {
        first.insert("issuer".into(), json!(issuer));
        first.insert("jwks_cooldown_s".into(), json!(jwks_cooldown_s));
    }
    json!({
        "policy": policy,
        "clusters": { "identity": "identity" },
        "client_credentials": { "client_id": EDGE_CLIENT.0, "client_secret": EDGE_CLIENT.1 },
        "tick_ms": 250,
    })
}

/// A stand-in for the ERP API until the emulated API lands: it answers with
/// what reached it, so the identity headers can be seen.
pub async fn placeholder_api(
    listen: SocketAddr,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = axum::Router::new().fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
        let seen: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(String::from_utf8_lossy(v.as_bytes()))))
            .collect();
        Json(json!({ "service": "erp-api-placeholder", "method": method.as_str(), "path": uri.to_string(), "headers": seen }))
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

/// The running stack.
pub struct Stack {
    /// The identity host.
    pub host: Running,
    /// The gateway in front of the API.
    pub gateway: Gateway,
    /// The API's own address.
    pub api: SocketAddr,
    api_task: tokio::task::JoinHandle<()>,
}

impl Stack {
    /// Stops everything.
    pub async fn stop(self) {
        self.gateway.stop().await;
        self.api_task.abort();
        self.host.stop().await;
    }
}

/// Where each part listens; port 0 picks a free one.
pub struct StackOptions {
    /// Identity host.
    pub identity: SocketAddr,
    /// Gateway.
    pub gateway: SocketAddr,
    /// API behind the gateway.
    pub api: SocketAddr,
    /// The gateway's admin (`/stats/prometheus`).
    pub admin: SocketAddr,
    /// The filter `.wasm`.
    pub filter: PathBuf,
    /// Data directory of the identity host.
    pub data: PathBuf,
    /// Cooldown between JWKS fetches for unknown `kid`s.
    pub jwks_cooldown_s: u64,
}

/// Starts the identity host, the API and the gateway.
pub async fn up(options: StackOptions, admin: &str) -> anyhow::Result<Stack> {
    let filter = std::fs::read(&options.filter).with_context(|| {
        format!(
            "reading the filter {} (build it with scripts/build-filter)",
            options.filter.display()
        )
    })?;
    let mut config = Config::demo();
    config.server.listen = options.identity;
    let store = Arc::new(SqliteStore::open(&options.data)?);
    let host = start(config, store, Arc::new(SystemClock), admin, false).await?;
    let identity_url = host.state.public_url.clone();
    let (api, api_task) = placeholder_api(options.api).await?;
    let plugin = plugin_config(&host.state.issuer, options.jwks_cooldown_s);
    let gateway = server::start(GatewayConfig {
        filter,
        plugin_config: plugin.to_string().into_bytes(),
        upstream: format!("http://{api}"),
        clusters: HashMap::from([("identity".to_owned(), identity_url)]),
        listen: options.gateway,
        workers: 2,
        admin: Some(options.admin),
    })
    .await?;
    Ok(Stack {
        host,
        gateway,
        api,
        api_task,
    })
}

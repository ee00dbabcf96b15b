//! `erpgate up`: the identity host with the emulated ERP API beside it, and
//! the gateway running the real filter in front of that API, all on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Value, json};

use erpgate_gateway::server::{self, Gateway, GatewayConfig};
use erpgate_identity::clock::SystemClock;
use erpgate_identity::config::Config;

use crate::serve::{Running, start};

/// Where `scripts/build-filter` writes the filter.
pub fn default_filter_path(repo: &Path) -> PathBuf {
    repo.join("deploy/envoy/erpgate_filter.wasm")
}

/// The plugin configuration for a host at `identity`: `policies/erpnet.json`
/// with the host's issuer, the `identity` cluster, the edge's
/// introspection credentials `edge` (client id, secret), and the RFC 9728
/// metadata describing the API at `gateway` (the edge's own URL).
pub fn plugin_config(
    issuer: &str,
    jwks_cooldown_s: u64,
    edge: (&str, &str),
    gateway: &str,
) -> Value {
    let mut policy: Value =
        serde_json::from_str(include_str!("../../../policies/erpnet.json")).unwrap_or(Value::Null);
    if let Some(first) = policy
        .pointer_mut("/issuers/0")
        .and_then(Value::as_object_mut)
    {
        first.insert("issuer".into(), json!(issuer));
        first.insert("jwks_cooldown_s".into(), json!(jwks_cooldown_s));
    }
    erpgate_erp_api::describe_resource(&mut policy, gateway);
    json!({
        "policy": policy,
        "clusters": { "identity": "identity" },
        "client_credentials": { "client_id": edge.0, "client_secret": edge.1 },
        "tick_ms": 250,
    })
}

/// The running stack.
pub struct Stack {
    /// The identity host.
    pub host: Running,
    /// The gateway in front of the API.
    pub gateway: Gateway,
    /// Where the gateway sends allowed requests.
    pub upstream: String,
}

impl Stack {
    /// Stops the gateway, then the identity host (which finishes in-flight
    /// requests and flushes pending writes).
    pub async fn stop(self) {
        self.gateway.stop().await;
        self.host.stop().await;
    }
}

/// Where each part listens; port 0 picks a free one.
pub struct StackOptions {
    /// Where the identity host listens; it also serves the emulated ERP API,
    /// the gateway's upstream unless `upstream` says otherwise.
    pub identity: SocketAddr,
    /// The identity host's operator listener (admin API, metrics).
    pub identity_admin: SocketAddr,
    /// Where the gateway listens: the address clients send API requests to.
    pub gateway: SocketAddr,
    /// Another upstream for the gateway instead of the emulated ERP API.
    pub upstream: Option<String>,
    /// The gateway's admin (`/stats/prometheus`).
    pub admin: SocketAddr,
    /// The filter `.wasm`.
    pub filter: PathBuf,
    /// The instance: `--config`'s file or the demo. Its listeners are
    /// replaced by `identity` and `identity_admin`; the gateway introspects
    /// as its first `[[api_resources]]` entry with a plain secret.
    pub config: Config,
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
    let mut config = options.config;
    config.server.listen = options.identity;
    config.server.admin_listen = options.identity_admin;
    let edge = config
        .api_resources
        .iter()
        .find_map(|r| Some((r.name.clone(), r.secret.clone()?)))
        .context("the gateway introspects as an API resource: the configuration needs an [[api_resources]] entry with a plain `secret`")?;
    if options.upstream.is_none()
        && config.server.trusted_proxies.is_empty()
        && options.identity.ip().is_loopback()
    {
        // The gateway reaches the API over loopback and appends the client's
        // address to X-Forwarded-For: the password limits count the client.
        config.server.trusted_proxies = vec![options.identity.ip().to_string()];
    }
    let store = crate::serve::open_store(&config).await?;
    let host = start(config, store, Arc::new(SystemClock), admin, false).await?;
    let identity_url = host.state.identity.public_url.clone();
    let upstream = options
        .upstream
        .unwrap_or_else(|| format!("http://{}", host.addr));
    let plugin = |gateway: SocketAddr| {
        plugin_config(
            &host.state.identity.issuer,
            options.jwks_cooldown_s,
            (&edge.0, &edge.1),
            &format!("http://{gateway}"),
        )
        .to_string()
        .into_bytes()
    };
    let gateway = server::start(GatewayConfig {
        filter,
        plugin_config: plugin(options.gateway),
        upstream: upstream.clone(),
        clusters: HashMap::from([("identity".to_owned(), identity_url)]),
        listen: options.gateway,
        workers: 2,
        admin: Some(options.admin),
        verify_signature: true,
    })
    .await?;
    if gateway.addr != options.gateway {
        // Bound to a port picked at start: describe the API where it is.
        gateway
            .reload(plugin(gateway.addr))
            .await
            .map_err(|e| anyhow::anyhow!("the gateway refused its own configuration: {e:?}"))?;
    }
    Ok(Stack {
        host,
        gateway,
        upstream,
    })
}

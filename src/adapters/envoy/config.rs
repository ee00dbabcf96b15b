//! The plugin configuration: the policy plus the adapter's own settings,
//! parsed strictly and checked before anything runs.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::host::LogLevel;
use crate::dpop::NonceKey;
use crate::introspection::client_authorization;
use crate::policy::Policy;

/// The configuration as Envoy hands it over.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// The policy document (see `policies/README.md`).
    policy: serde_json::Value,
    /// Policy upstream name → Envoy cluster name. Unlisted names are used as is.
    #[serde(default)]
    clusters: HashMap<String, String>,
    /// Introspection and revocation-feed client credentials.
    #[serde(default)]
    client_credentials: Option<ClientCredentials>,
    /// Background tick period in milliseconds.
    #[serde(default = "default_tick")]
    tick_ms: u64,
    /// Where decisions are logged.
    #[serde(default)]
    decision_log: RawDecisionLog,
    /// The key DPoP server nonces are minted under (base64url, at least 32
    /// random bytes); required when the policy's `dpop.nonces` is on. Every
    /// Envoy that should accept another's nonces needs the same key.
    #[serde(default)]
    dpop_nonce_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecisionLog {
    /// `off`, `debug`, `info` or `warn`.
    #[serde(default = "default_log_level")]
    level: String,
    /// Log one allow in this many (0: none); every denial is logged.
    #[serde(default = "default_allow_every")]
    allow_every: u32,
}

impl Default for RawDecisionLog {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            allow_every: default_allow_every(),
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

fn default_allow_every() -> u32 {
    100
}

/// Where and how often decisions are logged (`proxy_log`, one JSON line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DecisionLogConfig {
    /// The level, or `None` for no decision log.
    pub(super) level: Option<LogLevel>,
    /// One allow in this many is logged (0: none); every denial is.
    pub(super) allow_every: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientCredentials {
    client_id: String,
    client_secret: String,
}

fn default_tick() -> u64 {
    250
}

/// A checked configuration.
pub(super) struct Config {
    /// The compiled policy.
    pub(super) policy: Policy,
    /// Policy upstream name → Envoy cluster name.
    pub(super) clusters: HashMap<String, String>,
    /// The `Authorization` value for introspection and the revocation feed.
    pub(super) client_authorization: Option<String>,
    /// The introspection client's id (not its secret), for the shared
    /// cache's namespace.
    pub(super) client_id: Option<String>,
    /// How often background work runs.
    pub(super) tick: Duration,
    /// The decision log.
    pub(super) decision_log: DecisionLogConfig,
    /// The key DPoP server nonces are minted under.
    pub(super) nonce_key: Option<NonceKey>,
}

/// A configuration the filter refuses, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("erpgate: plugin configuration field `{field}`: {message}")]
pub(super) struct ConfigError {
    /// The offending field's path, e.g. `policy.routes[2].path`.
    pub(super) field: String,
    /// What is wrong with it.
    pub(super) message: String,
}

impl ConfigError {
    pub(super) fn new(field: &str, message: &str) -> Self {
        Self {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Parses and checks the plugin configuration.
pub(super) fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    let raw: RawConfig = crate::json::from_slice_with_path(bytes)
        .map_err(|(field, message)| ConfigError::new(&field, &message))?;
    if !(10..=60_000).contains(&raw.tick_ms) {
        return Err(ConfigError::new("tick_ms", "must be between 10 and 60000"));
    }
    let policy = Policy::compile(&raw.policy.to_string()).map_err(|e| {
        let describe = |e: &crate::PolicyError| match &e.route {
            Some(route) => format!("(route \"{route}\") {}", e.kind),
            None => e.kind.to_string(),
        };
        // Every error of the document, each with its field path.
        let mut message = describe(&e);
        for more in &e.also {
            message.push_str(&format!(
                "; and `policy.{}`: {}",
                more.field,
                describe(more)
            ));
        }
        ConfigError::new(&format!("policy.{}", e.field), &message)
    })?;
    let level = match raw.decision_log.level.as_str() {
        "off" => None,
        "debug" => Some(LogLevel::Debug),
        "info" => Some(LogLevel::Info),
        "warn" => Some(LogLevel::Warn),
        _ => {
            return Err(ConfigError::new(
                "decision_log.level",
                "one of off, debug, info, warn",
            ));
        }
    };
    if let Some(c) = &raw.client_credentials
        && (c.client_id.is_empty() || c.client_id.contains(':'))
    {
        return Err(ConfigError::new(
            "client_credentials.client_id",
            "must be non-empty without ':'",
        ));
    }
    let nonce_key = match &raw.dpop_nonce_key {
        Some(text) => Some(NonceKey::from_b64url(text).ok_or_else(|| {
            ConfigError::new("dpop_nonce_key", "base64url of at least 32 random bytes")
        })?),
        None if policy.dpop.nonces => {
            return Err(ConfigError::new(
                "dpop_nonce_key",
                "required: the policy's dpop.nonces is on (base64url of at least 32 random bytes)",
            ));
        }
        None => None,
    };
    Ok(Config {
        policy,
        clusters: raw.clusters,
        client_authorization: raw
            .client_credentials
            .as_ref()
            .map(|c| client_authorization(&c.client_id, &c.client_secret)),
        client_id: raw.client_credentials.map(|c| c.client_id),
        tick: Duration::from_millis(raw.tick_ms),
        decision_log: DecisionLogConfig {
            level,
            allow_every: raw.decision_log.allow_every,
        },
        nonce_key,
    })
}

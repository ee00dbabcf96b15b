//! `erpgate gateway`: the filter in front of an upstream.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use erpgate_identity::config::Config;

use super::support::*;

/// Arguments of `erpgate gateway`.
#[derive(Args)]
pub struct GatewayArgs {
    /// The filter .wasm.
    #[arg(long)]
    pub filter: PathBuf,
    /// The plugin configuration JSON (what Envoy's `configuration` holds).
    /// Edits are picked up within a second (and on SIGHUP), as Envoy takes
    /// an xDS update; a configuration the filter refuses leaves the running
    /// one in place.
    #[arg(long = "plugin-config")]
    pub plugin_config: PathBuf,
    /// Where allowed requests go.
    #[arg(long)]
    pub upstream: String,
    /// A cluster the filter may call: NAME=URL (repeatable).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// Address to accept client requests on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Worker threads (one filter VM each).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Admin address serving `/stats/prometheus`.
    #[arg(long)]
    pub admin: Option<std::net::SocketAddr>,
    /// Do not offer Envoy's `verify_signature` foreign function, as some
    /// proxy-wasm hosts do not: the filter then verifies RSA in wasm.
    #[arg(long)]
    pub no_verify_signature: bool,
}

/// Runs the gateway alone.
pub async fn run(args: GatewayArgs, config: Config) -> anyhow::Result<()> {
    let GatewayArgs {
        filter,
        plugin_config,
        upstream,
        clusters,
        listen,
        workers,
        admin,
        no_verify_signature,
    } = args;
    init_logs(config.server.log_format);
    let mut map = std::collections::HashMap::new();
    for c in clusters {
        let (name, url) = c
            .split_once('=')
            .with_context(|| format!("--cluster {c}: expected NAME=URL"))?;
        map.insert(name.to_owned(), url.to_owned());
    }
    let gateway = erpgate_gateway::server::start(erpgate_gateway::server::GatewayConfig {
        filter: std::fs::read(&filter).with_context(|| format!("reading {}", filter.display()))?,
        plugin_config: std::fs::read(&plugin_config)
            .with_context(|| format!("reading {}", plugin_config.display()))?,
        upstream,
        clusters: map,
        listen,
        workers,
        admin,
        verify_signature: !no_verify_signature,
    })
    .await?;
    say!("erpgate gateway on http://{}", gateway.addr);
    if let Some(a) = gateway.admin {
        say!("stats on http://{a}/stats/prometheus");
    }
    say!(
        "following {} for changes (and SIGHUP)",
        plugin_config.display()
    );
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped?,
        followed = gateway.follow_config(&plugin_config) => followed?,
    }
    gateway.stop().await;
    Ok(())
}

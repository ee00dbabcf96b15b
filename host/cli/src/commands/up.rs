//! `erpgate up`: the identity host, the emulated API and the gateway.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use erpgate_identity::config::Config;

use super::support::*;

/// Arguments of `erpgate up`.
#[derive(Args)]
pub struct UpArgs {
    /// Identity host address.
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub identity: std::net::SocketAddr,
    /// The identity host's operator listener (admin API, `/metrics`).
    #[arg(long, default_value = "127.0.0.1:8701")]
    pub identity_admin: std::net::SocketAddr,
    /// Gateway address (where clients call the API).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub gateway: std::net::SocketAddr,
    /// Put the gateway in front of this upstream instead of the emulated
    /// ERP API (e.g. http://127.0.0.1:9000).
    #[arg(long)]
    pub upstream: Option<String>,
    /// The gateway's admin address (`/stats/prometheus`).
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub admin: std::net::SocketAddr,
    /// The filter .wasm (default: deploy/envoy/erpgate_filter.wasm, built if missing).
    #[arg(long)]
    pub filter: Option<PathBuf>,
}

/// Runs the whole local stack.
pub async fn run(args: UpArgs, config: Config, demo: bool) -> anyhow::Result<()> {
    let UpArgs {
        identity,
        identity_admin,
        gateway,
        upstream,
        admin: admin_addr,
        filter,
    } = args;
    init_logs(config.server.log_format);
    demo_on_loopback(demo, "--identity", identity)?;
    demo_on_loopback(demo, "--identity-admin", identity_admin)?;
    demo_on_loopback(demo, "--gateway", gateway)?;
    demo_on_loopback(demo, "--admin", admin_addr)?;
    let filter = match filter {
        Some(f) => f,
        None => {
            let path = erpgate_cli::up::default_filter_path(std::path::Path::new("."));
            if !path.exists() {
                eprintln!("building the filter (scripts/build-filter)…");
                let status = std::process::Command::new("scripts/build-filter")
                        .status()
                        .context("running scripts/build-filter (run erpgate up from the repository root, or pass --filter)")?;
                if !status.success() {
                    bail!("scripts/build-filter failed");
                }
            }
            path
        }
    };
    let admin = admin_credential(&config, demo)?;
    let options = erpgate_cli::up::StackOptions {
        identity,
        identity_admin,
        gateway,
        upstream,
        admin: admin_addr,
        filter,
        config,
        jwks_cooldown_s: 30,
    };
    let stack = erpgate_cli::up::up(options, admin.value()).await?;
    warn_demo_leftovers(stack.host.state.identity.store.as_ref(), demo).await?;
    let id = &stack.host.state.identity.public_url;
    let gw = format!("http://{}", stack.gateway.addr);
    say!("erpgate stack is up");
    say!("  identity host  {id}/id  (discovery {id}/id/.well-known/openid-configuration)");
    say!(
        "  ERP API        {gw}  (gateway running the erpgate filter in front of {})",
        stack.upstream
    );
    if let Some(a) = stack.gateway.admin {
        say!("  gateway stats  http://{a}/stats/prometheus");
    }
    say!(
        "  identity admin {}/admin/…, {}/metrics",
        stack.host.admin_url(),
        stack.host.admin_url()
    );
    say!("  {}", admin.describe());
    if demo {
        demo_lines(id, &gw, admin.value(), &stack.host.admin_url());
    }
    say!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    stack.stop().await;
    Ok(())
}

/// The demo's credentials and what to try with them.
fn demo_lines(id: &str, gw: &str, admin: &str, admin_url: &str) {
    say!(
        "  demo apps: demo.service/demo-service-secret (read update), demo.reports/demo-reports-secret (PATs), erpgate.edge/demo-edge-secret (introspection)"
    );
    say!("try:");
    say!(
        "  TOKEN=$(curl -s -u demo.service:demo-service-secret -d grant_type=client_credentials -d scope=read {id}/id/connect/token | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
    );
    say!(
        "  curl -s -H \"Authorization: Bearer $TOKEN\" {gw}/api/domain/odata/Crm_Customers          # 200, the customers (the call opens an ERP session)"
    );
    say!(
        "  curl -s -i -X POST -H \"Authorization: Bearer $TOKEN\" {gw}/api/domain/odata/Crm_Customers # 403 insufficient_scope (read-only token)"
    );
    say!(
        "  curl -s -H 'Authorization: Bearer {admin}' {admin_url}/admin/sessions                     # the license table"
    );
    print_interactive(id);
}

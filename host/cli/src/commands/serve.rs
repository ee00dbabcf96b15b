//! `erpgate serve`: the identity host and the emulated ERP API.

use std::sync::Arc;

use clap::Args;
use erpgate_identity::clock::SystemClock;
use erpgate_identity::config::{Config, LogFormat};

use super::support::*;

/// Arguments of `erpgate serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Listen address (overrides `server.listen`), e.g. 127.0.0.1:8700.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The operator's listener for the admin API and `/metrics` (overrides
    /// `server.admin_listen`), e.g. 127.0.0.1:8701.
    #[arg(long)]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// Log format (overrides `server.log_format`).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Public base URL (overrides `server.public_url`); the issuer is `{url}/id`.
    #[arg(long)]
    pub public_url: Option<String>,
}

/// Runs the Identity Server emulation with the emulated API beside it.
pub async fn run(args: ServeArgs, mut config: Config, demo: bool) -> anyhow::Result<()> {
    let ServeArgs {
        listen,
        admin_listen,
        log_format,
        public_url,
    } = args;
    init_logs(log_format.unwrap_or(config.server.log_format));
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    if let Some(addr) = admin_listen {
        config.server.admin_listen = addr;
    }
    if let Some(url) = public_url {
        config.server.public_url = Some(url);
        config.validate_public()?;
    }
    demo_on_loopback(demo, "--listen", config.server.listen)?;
    demo_on_loopback(demo, "--admin-listen", config.server.admin_listen)?;
    let admin = admin_credential(&config, demo)?;
    let store = open_store(&config, demo).await?;
    let running = erpgate_cli::start(
        config.clone(),
        store,
        Arc::new(SystemClock),
        admin.value(),
        true,
    )
    .await?;
    banner(
        &config,
        demo,
        &running.state.identity.public_url,
        (running.addr, running.admin_addr),
        &admin,
    );
    running.wait().await;
    Ok(())
}

fn banner(
    config: &Config,
    demo: bool,
    base: &str,
    (listening, operator): (std::net::SocketAddr, std::net::SocketAddr),
    admin: &AdminCredential,
) {
    let iss = format!("{base}/id");
    let admin_base = format!("http://{operator}");
    say!("erpgate identity host on {base} (listening on {listening})");
    say!("  issuer        {iss}");
    say!("  discovery     {iss}/.well-known/openid-configuration");
    say!("  jwks          {iss}/.well-known/openid-configuration/jwks");
    say!("  token         {iss}/connect/token");
    say!("  introspect    {iss}/connect/introspect");
    say!("  feed          {iss}/connect/revocation/feed");
    say!("  metrics       {admin_base}/metrics");
    say!(
        "  admin api     {admin_base}/admin/reference-tokens (Authorization: Bearer <admin credential>)"
    );
    say!("  {}", admin.describe());
    say!("trusted applications:");
    for app in &config.apps {
        let secret = match (&app.secret, demo) {
            (Some(s), true) => format!(" secret={s}"),
            (Some(_), false) => " secret=(configured)".to_owned(),
            _ => String::new(),
        };
        say!(
            "  {} ({:?}) scope=\"{}\"{}",
            app.client_id,
            app.client_type,
            app.scope,
            secret
        );
    }
    for r in &config.api_resources {
        let secret = match (&r.secret, demo) {
            (Some(s), true) => format!(" secret={s}"),
            _ => String::new(),
        };
        say!("  api resource {}{}", r.name, secret);
    }
    if demo {
        say!(
            "users: admin/admin-password (administrator), alice/alice-password, bob/bob-password (community)"
        );
        say!("try:");
        say!(
            "  curl -s -u demo.service:demo-service-secret -d grant_type=client_credentials -d scope=read {iss}/connect/token"
        );
        say!(
            "  curl -s -H 'Authorization: Bearer {}' -H 'content-type: application/json' -d '{{\"client_id\":\"demo.reports\",\"kind\":\"pat\",\"user\":\"alice\",\"scope\":\"read\",\"expires_in_days\":30,\"description\":\"try it\"}}' {admin_base}/admin/reference-tokens",
            admin.value()
        );
        say!(
            "  curl -s -u erpgate.edge:demo-edge-secret -d token=<token> {iss}/connect/introspect"
        );
        print_interactive(base);
    }
}

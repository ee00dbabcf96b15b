//! `erpgate apps`: trusted applications.

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use erpgate_identity::clock::{Clock, SystemClock};
use erpgate_identity::config::Config;
use erpgate_store::records::{ClientType, ReferenceTokenPolicy, SECURITY_SCOPE, TrustedApp};
use erpgate_store::secrets::{new_secret, secret_hash};

use super::support::*;

#[derive(Clone, Copy, ValueEnum)]
pub enum AppType {
    Confidential,
    Public,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RefPolicy {
    None,
    AuthenticatedUsers,
    AdministratorsOnly,
}

#[derive(Subcommand)]
pub enum AppsCommand {
    /// List trusted applications.
    List,
    /// Register a trusted application; a confidential app's secret is printed once.
    Add {
        /// ApplicationUri (client_id).
        #[arg(long)]
        client_id: String,
        /// Display name, shown on the sign-in and consent pages.
        #[arg(long, default_value = "(unnamed)")]
        name: String,
        /// Client type: confidential (a secret), public (PKCE, no secret) or
        /// none (a placeholder that never authenticates).
        #[arg(long = "type", value_enum, default_value = "confidential")]
        client_type: AppType,
        /// Allowed scopes, space-separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// SystemUser login; enables client credentials.
        #[arg(long)]
        system_user: Option<String>,
        /// Who may mint reference tokens.
        #[arg(long, value_enum, default_value = "none")]
        reference_tokens: RefPolicy,
        /// Allowed redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Allow interactive sign-in by internal users.
        #[arg(long)]
        internal_users: bool,
        /// Allow legacy Basic authentication.
        #[arg(long)]
        basic_auth: bool,
        /// One of the instance's own apps: only these may hold `sec`.
        #[arg(long)]
        internal: bool,
        /// Refresh tokens for a public client (ERP.net gives public clients
        /// none).
        #[arg(long)]
        public_refresh_tokens: bool,
        /// Every token request must prove a DPoP key (RFC 9449).
        #[arg(long)]
        require_dpop: bool,
    },
    /// Disable an application; it stops working at once.
    Disable {
        /// client_id.
        client_id: String,
    },
    /// Enable a disabled application.
    Enable {
        /// client_id.
        client_id: String,
    },
    /// Replace a confidential application's secret; the new one is printed once.
    RotateSecret {
        /// client_id.
        client_id: String,
    },
}

/// Lists, adds, enables, disables trusted applications or rotates their secret.
/// `demo`: whether `config` is the built-in demo instance.
pub async fn run(cmd: AppsCommand, config: Config, demo: bool) -> anyhow::Result<()> {
    let store = open_store(&config, demo).await?;
    match cmd {
        AppsCommand::List => {
            for a in store.apps().await? {
                say!(
                    "{} {:?} enabled={} scope=\"{}\" system_user={} reference_tokens={:?} redirect_uris={}",
                    a.client_id,
                    a.client_type,
                    a.enabled,
                    a.scope,
                    a.acting_system_user().unwrap_or("-"),
                    a.reference_tokens,
                    a.redirect_uris.join(",")
                );
            }
        }
        AppsCommand::Add {
            client_id,
            name,
            client_type,
            scope,
            system_user,
            reference_tokens,
            redirect_uris,
            internal_users,
            basic_auth,
            internal,
            public_refresh_tokens,
            require_dpop,
        } => {
            let mut app = TrustedApp::new(&client_id, &name, SystemClock.now());
            app.client_type = match client_type {
                AppType::Confidential => ClientType::Confidential,
                AppType::Public => ClientType::Public,
                AppType::None => ClientType::None,
            };
            app.scope = erpgate::ScopeSet::parse(&scope).context("--scope")?;
            if app.scope.contains(SECURITY_SCOPE) && !internal {
                bail!("--scope: sec is granted to internal apps only (add --internal)");
            }
            if public_refresh_tokens && app.client_type != ClientType::Public {
                bail!("--public-refresh-tokens: applies to public clients only");
            }
            app.internal = internal;
            app.public_refresh_tokens = public_refresh_tokens;
            app.require_dpop = require_dpop;
            if system_user.is_some() && app.client_type != ClientType::Confidential {
                bail!(
                    "--system-user: only a confidential app has service access (client credentials, SATs)"
                );
            }
            if let Some(u) = &system_user
                && store.user(u).await?.is_none()
            {
                bail!("--system-user {u}: no such user");
            }
            app.system_user_allowed = system_user.is_some();
            app.system_user = system_user;
            app.reference_tokens = match reference_tokens {
                RefPolicy::None => ReferenceTokenPolicy::None,
                RefPolicy::AuthenticatedUsers => ReferenceTokenPolicy::AuthenticatedUsers,
                RefPolicy::AdministratorsOnly => ReferenceTokenPolicy::AdministratorsOnly,
            };
            app.redirect_uris = redirect_uris;
            app.internal_users_allowed = internal_users;
            app.basic_auth_allowed = basic_auth;
            let secret = (app.client_type == ClientType::Confidential).then(new_secret);
            app.secret_hash = secret.as_deref().map(secret_hash);
            store.insert_app(&app).await?;
            say!("added {}", app.client_id);
            if let Some(s) = secret {
                say!("secret: {s}");
                eprintln!("The secret is shown once; only its hash is stored.");
            }
        }
        AppsCommand::Disable { client_id } => {
            if !store.set_app_enabled(&client_id, false).await? {
                bail!("no application {client_id}");
            }
            let lifetime = config.instance.access_token_lifetime_s;
            erpgate_identity::changes::app_changed(
                &*store,
                &client_id,
                SystemClock.now(),
                lifetime,
            )
            .await?;
            say!("disabled {client_id}; edges stop honouring its tokens at their next feed poll");
        }
        AppsCommand::Enable { client_id } => {
            if !store.set_app_enabled(&client_id, true).await? {
                bail!("no application {client_id}");
            }
            say!("enabled {client_id}");
        }
        AppsCommand::RotateSecret { client_id } => {
            let app = store
                .app(&client_id)
                .await?
                .with_context(|| format!("no application {client_id}"))?;
            if app.client_type != ClientType::Confidential {
                bail!("only confidential applications have secrets");
            }
            let secret = new_secret();
            store
                .set_app_secret_hash(&client_id, &secret_hash(&secret))
                .await?;
            say!("secret: {secret}");
            eprintln!("The old secret stopped working; the new one is shown once.");
        }
    }
    Ok(())
}

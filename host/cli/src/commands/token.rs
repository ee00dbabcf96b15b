//! `erpgate token`: PAT/SAT reference tokens.

use anyhow::bail;
use clap::{Subcommand, ValueEnum};
use erpgate_identity::clock::{Clock, SystemClock};
use erpgate_identity::config::Config;
use erpgate_identity::reference_tokens::{IssueRequest, issue};
use erpgate_store::records::GrantKind;

use super::support::*;

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Pat,
    Sat,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Mint a PAT or SAT; the value is printed once.
    Issue {
        /// The trusted application (client_id).
        #[arg(long)]
        app: String,
        /// pat (acts as --user) or sat (acts as the app's SystemUser).
        #[arg(long, value_enum)]
        kind: Kind,
        /// The user a PAT acts as.
        #[arg(long)]
        user: Option<String>,
        /// Space-separated scopes (default: all of the app's).
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime in days.
        #[arg(long, conflicts_with = "expires_at")]
        expires_in_days: Option<u64>,
        /// Expiry as Unix seconds.
        #[arg(long)]
        expires_at: Option<u64>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Bind the token to a DPoP key: the key's RFC 7638 thumbprint
        /// (base64url). It is then only good with that key's proofs.
        #[arg(long)]
        dpop_jkt: Option<String>,
    },
    /// Revoke by id (or by the token value).
    Revoke {
        /// The id printed at issue time, or the token.
        id: String,
    },
    /// List tokens (metadata only).
    List,
}

/// Mints, revokes or lists reference tokens in the store.
/// `demo`: whether `config` is the built-in demo instance.
pub async fn run(cmd: TokenCommand, config: Config, demo: bool) -> anyhow::Result<()> {
    let store = open_store(&config, demo).await?;
    let now = SystemClock.now();
    match cmd {
        TokenCommand::Issue {
            app,
            kind,
            user,
            scope,
            expires_in_days,
            expires_at,
            description,
            dpop_jkt,
        } => {
            let expires_at = match (expires_at, expires_in_days) {
                (Some(at), _) => at,
                (None, Some(days)) => now.saturating_add(days.saturating_mul(86_400)),
                (None, None) => {
                    bail!("an expiry is required: --expires-in-days or --expires-at")
                }
            };
            let request = IssueRequest {
                client_id: app,
                kind: match kind {
                    Kind::Pat => GrantKind::Pat,
                    Kind::Sat => GrantKind::Sat,
                },
                user,
                requested_by: None,
                scope,
                expires_at,
                description,
                jkt: dpop_jkt,
            };
            let issued = issue(
                store.as_ref(),
                &request,
                now,
                config.instance.reference_token_max_days,
            )
            .await?;
            say!("{}", issued.value);
            eprintln!(
                "id {} ({} for {}, acts as {}, scope \"{}\", expires {}). The value above is shown once.",
                issued.record.id,
                issued.record.kind.as_str(),
                issued.record.client_id,
                issued.record.subject,
                issued.record.scopes,
                issued.record.expires_at
            );
        }
        TokenCommand::Revoke { id } => {
            let key = if erpgate::credential::is_reference_token(&id) {
                erpgate::cache::TokenHash::of(&id).to_hex()
            } else {
                id
            };
            match store.revoke_reference_token(&key, now).await? {
                Some(t) => say!("revoked {}", t.id),
                None => bail!("no live token with that id"),
            }
        }
        TokenCommand::List => {
            for t in store.reference_tokens().await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at <= now {
                    "expired"
                } else {
                    "active"
                };
                say!(
                    "{} {} {} app={} subject={} scope=\"{}\" expires={} last_used={} {:?}",
                    t.id,
                    t.kind.as_str(),
                    state,
                    t.client_id,
                    t.subject,
                    t.scopes,
                    t.expires_at,
                    t.last_used_at
                        .map_or_else(|| "never".to_owned(), |u| u.to_string()),
                    t.description
                );
            }
        }
    }
    Ok(())
}

//! `erpgate sessions`: the license table of a running host.

use anyhow::bail;
use clap::{Args, Subcommand};

use super::support::*;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// The license table and the open sessions.
    List,
    /// End a session; its slot is free at once.
    End {
        /// The session id (from `sessions list`).
        id: String,
    },
}

/// Arguments of `erpgate sessions`.
#[derive(Args)]
pub struct SessionsArgs {
    /// The running host's admin listener (`server.admin_listen`).
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    pub url: String,
    /// The admin credential (default: ERPGATE_ADMIN_TOKEN).
    #[arg(long, env = "ERPGATE_ADMIN_TOKEN")]
    pub admin_token: String,
    #[command(subcommand)]
    pub command: SessionsCommand,
}

/// Reads or ends ERP sessions of a running host.
pub async fn run(args: SessionsArgs) -> anyhow::Result<()> {
    let SessionsArgs {
        url,
        admin_token,
        command,
    } = args;
    let url = url.trim_end_matches('/');
    let (method, target) = match &command {
        SessionsCommand::List => ("GET", format!("{url}/admin/sessions")),
        SessionsCommand::End { id } => ("DELETE", format!("{url}/admin/sessions/{id}")),
    };
    let (status, body) = admin_call(method, &target, &admin_token).await?;
    match (command, status) {
        (SessionsCommand::List, 200) => {
            let table: erpgate_erp_api::sessions::Table = serde_json::from_slice(&body)?;
            say!(
                "{} of {} license slots in use (reserved: {})",
                table.used,
                table.slots,
                table.reserved_accounts.join(", ")
            );
            for s in table.sessions {
                say!(
                    "{}  {:<9} {:<24} app={} opened={} last={}{}",
                    s.id,
                    serde_json::to_value(s.origin)?.as_str().unwrap_or(""),
                    s.login,
                    s.client_id.as_deref().unwrap_or("-"),
                    s.opened_at,
                    s.last_seen,
                    if s.reserved { "  (reserved seat)" } else { "" }
                );
            }
        }
        (SessionsCommand::End { .. }, 204) => say!("session ended"),
        (_, 404) => bail!("no such session"),
        (_, 401) => bail!("the admin credential was refused"),
        (_, other) => bail!("the host answered {other}"),
    }
    Ok(())
}

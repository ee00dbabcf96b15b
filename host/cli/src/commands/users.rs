//! `erpgate users`: human accounts.

use clap::Subcommand;
use erpgate_identity::clock::{Clock, SystemClock};
use erpgate_identity::config::Config;

use super::support::*;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Set a user's password (read from ERPGATE_PASSWORD, else the first line
    /// of standard input); every refresh token of the user stops working.
    SetPassword {
        /// Login of the user whose password to set.
        login: String,
    },
}

/// Sets a user's password.
/// `demo`: whether `config` is the built-in demo instance.
pub async fn run(cmd: UsersCommand, config: Config, demo: bool) -> anyhow::Result<()> {
    let UsersCommand::SetPassword { login } = cmd;
    if config
        .users
        .iter()
        .any(|u| u.login == login && u.password.is_some())
    {
        // The file is the source of truth for what it declares: a password
        // set here would be replaced at the next start.
        anyhow::bail!(
            "the configuration declares {login}'s password (users.password); change it there, or remove it there to manage it here"
        );
    }
    let password = match std::env::var("ERPGATE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.chars().count() < 8 {
        anyhow::bail!("the password must have at least 8 characters");
    }
    let hash = erpgate_identity::accounts::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    let store = open_store(&config, demo).await?;
    let now = SystemClock.now();
    let event_expires_at = now.saturating_add(config.instance.access_token_lifetime_s);
    if !store
        .set_password_hash(&login, &hash, now, event_expires_at)
        .await?
    {
        anyhow::bail!("no user {login}");
    }
    let lifetime = config.instance.access_token_lifetime_s;
    erpgate_identity::changes::user_changed(&*store, &login, now, lifetime).await?;
    say!(
        "password changed for {login}; their sessions are ended and their refresh tokens no longer work"
    );
    Ok(())
}

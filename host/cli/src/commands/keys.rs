//! `erpgate keys`: signing keys.

use clap::Subcommand;
use erpgate_identity::clock::{Clock, SystemClock};
use erpgate_identity::config::Config;

use super::support::*;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; the old one stays published until its tokens expire.
    Rotate,
}

/// Rotates the signing keys in the store.
/// `demo`: whether `config` is the built-in demo instance.
pub async fn run(cmd: KeysCommand, config: Config, demo: bool) -> anyhow::Result<()> {
    let KeysCommand::Rotate = cmd;
    let store = open_store(&config, demo).await?;
    let now = SystemClock.now();
    erpgate_identity::keys::KeyRing::load_or_init(store.as_ref(), now).await?;
    // Old keys stay published for one access-token lifetime plus the edge's leeway.
    let kid = erpgate_identity::keys::rotate(
        store.as_ref(),
        now,
        erpgate_identity::keys::PUBLISH_BEFORE_SIGNING_S,
        config.instance.access_token_lifetime_s + 300,
    )
    .await?;
    say!(
        "new signing key {kid}: published now by every host on this store within {}s, signing from {}s",
        erpgate_identity::keys::RELOAD_INTERVAL_S,
        erpgate_identity::keys::PUBLISH_BEFORE_SIGNING_S
    );
    Ok(())
}

//! `erpgate`: the host's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Prints a line to stdout, ignoring errors: a closed stdout (say `erpgate
/// serve | head -1`) must never take a running server down.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod commands;

use commands::support::load_config;

#[derive(Parser)]
#[command(
    name = "erpgate",
    version,
    about = "ERP.net identity emulation and edge gateway"
)]
struct Cli {
    /// TOML configuration of the instance (`host/CONFIG.md`).
    #[arg(long, global = true, env = "ERPGATE_CONFIG", conflicts_with = "demo")]
    config: Option<PathBuf>,
    /// Run the built-in demo instance instead: its passwords and secrets are
    /// published, so it listens on loopback only.
    #[arg(long, global = true)]
    demo: bool,
    /// Data directory (overrides `server.data_dir`).
    #[arg(long, global = true, env = "ERPGATE_DATA")]
    data: Option<PathBuf>,
    /// PostgreSQL URL shared by host replicas (overrides `server.database`);
    /// without one, SQLite in the data directory.
    #[arg(long, global = true, env = "ERPGATE_DATABASE", hide_env_values = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Identity Server emulation.
    Serve(commands::serve::ServeArgs),
    /// Run the whole local stack: the identity host with the emulated ERP API,
    /// and the gateway running the real filter in front of that API.
    Up(commands::up::UpArgs),
    /// Run the gateway alone: the filter in front of an upstream.
    Gateway(commands::gateway::GatewayArgs),
    /// Mint, list and revoke reference tokens (PAT/SAT).
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// List, add, disable and enable trusted applications, or rotate a secret.
    #[command(subcommand)]
    Apps(commands::apps::AppsCommand),
    /// Rotate the identity host's signing keys.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Manage user accounts: set a password.
    #[command(subcommand)]
    Users(commands::users::UsersCommand),
    /// ERP sessions and license slots of a running host (asked over HTTP
    /// with the admin credential).
    Sessions(commands::sessions::SessionsArgs),
    /// Why a policy allows or refuses a request: the decision of the same
    /// core the filter and the worker run, with its trace.
    Explain(commands::explain::ExplainArgs),
    /// Check a policy: every error with its field path.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        // Asks a running host over HTTP: no configuration of its own.
        Command::Sessions(args) => return commands::sessions::run(args).await,
        // Reads a policy: no instance involved.
        Command::Explain(args) => return commands::explain::run(args),
        Command::Policy(cmd) => return commands::policy::run(cmd),
        _ => {}
    }
    let (mut config, demo) = load_config(cli.config.as_ref(), cli.demo)?;
    if let Some(dir) = &cli.data {
        config.server.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database {
        config.server.database = Some(url.clone());
        config.validate_database()?;
    }
    match cli.command {
        Command::Serve(args) => commands::serve::run(args, config, demo).await,
        Command::Up(args) => commands::up::run(args, config, demo).await,
        Command::Gateway(args) => commands::gateway::run(args, config).await,
        Command::Token(cmd) => commands::token::run(cmd, config, demo).await,
        Command::Apps(cmd) => commands::apps::run(cmd, config, demo).await,
        Command::Keys(cmd) => commands::keys::run(cmd, config, demo).await,
        Command::Users(cmd) => commands::users::run(cmd, config, demo).await,
        Command::Sessions(_) | Command::Explain(_) | Command::Policy(_) => Ok(()),
    }
}

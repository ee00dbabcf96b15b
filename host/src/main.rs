//! `erpgate`: the host's command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use erpgate_host::config::{Config, LogFormat};
use erpgate_host::keys::random_hex;
use erpgate_host::model::{ClientType, GrantKind, ReferenceTokenPolicy, TrustedApp, secret_hash};
use erpgate_host::state::{Clock, SystemClock};
use erpgate_host::store::Store;
use erpgate_host::tokens::{IssueRequest, issue};

/// Prints a line to stdout, ignoring errors: a closed stdout (say `erpgate
/// serve | head -1`) must never take a running server down.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "erpgate",
    version,
    about = "ERP.net identity emulation and edge gateway"
)]
struct Cli {
    /// TOML configuration; without it, the built-in demo instance.
    #[arg(long, global = true, env = "ERPGATE_CONFIG")]
    config: Option<PathBuf>,
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
    Serve {
        /// Listen address (overrides `server.listen`), e.g. 127.0.0.1:8700.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Log format (overrides `server.log_format`).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
        /// Public base URL (overrides `server.public_url`); the issuer is `{url}/id`.
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Run the whole local stack: the identity host with the emulated ERP API,
    /// and the gateway running the real filter in front of that API.
    Up {
        /// Identity host address.
        #[arg(long, default_value = "127.0.0.1:8700")]
        identity: std::net::SocketAddr,
        /// Gateway address (where clients call the API).
        #[arg(long, default_value = "127.0.0.1:8080")]
        gateway: std::net::SocketAddr,
        /// Put the gateway in front of this upstream instead of the emulated
        /// ERP API (e.g. http://127.0.0.1:9000).
        #[arg(long)]
        upstream: Option<String>,
        /// The gateway's admin address (`/stats/prometheus`).
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: std::net::SocketAddr,
        /// The filter .wasm (default: deploy/envoy/erpgate_filter.wasm, built if missing).
        #[arg(long)]
        filter: Option<PathBuf>,
    },
    /// Run the gateway alone: the filter in front of an upstream.
    Gateway {
        /// The filter .wasm.
        #[arg(long)]
        filter: PathBuf,
        /// The plugin configuration JSON (what Envoy's `configuration` holds).
        #[arg(long = "plugin-config")]
        plugin_config: PathBuf,
        /// Where allowed requests go.
        #[arg(long)]
        upstream: String,
        /// A cluster the filter may call: NAME=URL (repeatable).
        #[arg(long = "cluster")]
        clusters: Vec<String>,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Worker threads (one filter VM each).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Admin address serving `/stats/prometheus`.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Do not offer Envoy's `verify_signature` foreign function, as some
        /// proxy-wasm hosts do not: the filter then verifies RSA in wasm.
        #[arg(long)]
        no_verify_signature: bool,
    },
    /// Reference tokens (PAT/SAT).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Trusted applications.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// ERP sessions and license slots of a running host (asked over HTTP
    /// with the admin credential).
    Sessions {
        /// The running host.
        #[arg(long, default_value = "http://127.0.0.1:8700")]
        url: String,
        /// The admin credential (default: ERPGATE_ADMIN_TOKEN).
        #[arg(long, env = "ERPGATE_ADMIN_TOKEN")]
        admin_token: String,
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// The license table and the open sessions.
    List,
    /// End a session; its slot is free at once.
    End {
        /// The session id (from `sessions list`).
        id: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Set a user's password (read from ERPGATE_PASSWORD, else the first line
    /// of standard input); every refresh token of the user stops working.
    SetPassword {
        /// The login.
        login: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Pat,
    Sat,
}

#[derive(Subcommand)]
enum TokenCommand {
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
    },
    /// Revoke by id (or by the token value).
    Revoke {
        /// The id printed at issue time, or the token.
        id: String,
    },
    /// List tokens (metadata only).
    List,
}

#[derive(Clone, Copy, ValueEnum)]
enum AppType {
    Confidential,
    Public,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum RefPolicy {
    None,
    AuthenticatedUsers,
    AdministratorsOnly,
}

#[derive(Subcommand)]
enum AppsCommand {
    /// List trusted applications.
    List,
    /// Register a trusted application; a confidential app's secret is printed once.
    Add {
        /// ApplicationUri (client_id).
        #[arg(long)]
        client_id: String,
        /// Display name.
        #[arg(long, default_value = "(unnamed)")]
        name: String,
        /// Client type.
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

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new signing key; the old one stays published until its tokens expire.
    Rotate,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<(Config, bool)> {
    match path {
        None => Ok((Config::demo(), true)),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Ok((
                Config::parse(&text).with_context(|| format!("in {}", p.display()))?,
                false,
            ))
        }
    }
}

/// A 24-character secret, as ERP.net generates at install.
fn new_secret() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| {
            ALPHABET
                .get(rng.random_range(0..ALPHABET.len()))
                .copied()
                .map_or('x', char::from)
        })
        .collect()
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn banner(config: &Config, demo: bool, base: &str, listening: std::net::SocketAddr, admin: &str) {
    let iss = format!("{base}/id");
    say!("erpgate identity host on {base} (listening on {listening})");
    say!("  issuer        {iss}");
    say!("  discovery     {iss}/.well-known/openid-configuration");
    say!("  jwks          {iss}/.well-known/openid-configuration/jwks");
    say!("  token         {iss}/connect/token");
    say!("  introspect    {iss}/connect/introspect");
    say!("  feed          {iss}/connect/revocation/feed");
    say!("  metrics       {base}/metrics");
    say!(
        "  admin api     {base}/admin/reference-tokens (Authorization: Bearer <admin credential>)"
    );
    say!("  admin credential: {admin}");
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
            "  curl -s -H 'Authorization: Bearer {admin}' -H 'content-type: application/json' -d '{{\"client_id\":\"demo.reports\",\"kind\":\"pat\",\"user\":\"alice\",\"scope\":\"read\",\"expires_in_days\":30,\"description\":\"try it\"}}' {base}/admin/reference-tokens"
        );
        say!(
            "  curl -s -u erpgate.edge:demo-edge-secret -d token=<token> {iss}/connect/introspect"
        );
        print_interactive(base);
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = erpgate_host::open_store(config).await?;
    erpgate_host::seed(store.as_ref(), config, SystemClock.now()).await?;
    Ok(store)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (mut config, demo) = load_config(cli.config.as_ref())?;
    if let Some(dir) = &cli.data {
        config.server.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database {
        config.server.database = Some(url.clone());
        config.validate_database()?;
    }
    match cli.command {
        Command::Serve {
            listen,
            log_format,
            public_url,
        } => {
            init_logs(log_format.unwrap_or(config.server.log_format));
            if let Some(addr) = listen {
                config.server.listen = addr;
            }
            if let Some(url) = public_url {
                config.server.public_url = Some(url);
                config.validate_public()?;
            }
            let store = open_store(&config).await?;
            let admin = std::env::var("ERPGATE_ADMIN_TOKEN").unwrap_or_else(|_| random_hex(24));
            let running =
                erpgate_host::start(config.clone(), store, Arc::new(SystemClock), &admin, true)
                    .await?;
            banner(
                &config,
                demo,
                &running.state.public_url,
                running.addr,
                &admin,
            );
            running.wait().await;
        }
        Command::Up {
            identity,
            gateway,
            upstream,
            admin: admin_addr,
            filter,
        } => {
            init_logs(config.server.log_format);
            let filter = match filter {
                Some(f) => f,
                None => {
                    let path = erpgate_host::stack::default_filter_path(std::path::Path::new("."));
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
            let admin = std::env::var("ERPGATE_ADMIN_TOKEN").unwrap_or_else(|_| random_hex(24));
            let options = erpgate_host::stack::StackOptions {
                identity,
                gateway,
                upstream,
                admin: admin_addr,
                filter,
                data: config.server.data_dir.clone(),
                database: config.server.database.clone(),
                jwks_cooldown_s: 30,
            };
            let stack = erpgate_host::stack::up(options, &admin).await?;
            let id = &stack.host.state.public_url;
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
            say!("  admin credential: {admin}");
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
                "  curl -s -H 'Authorization: Bearer {admin}' {id}/admin/sessions                     # the license table"
            );
            print_interactive(id);
            say!("Ctrl-C stops everything.");
            tokio::signal::ctrl_c().await?;
            stack.stop().await;
        }
        Command::Gateway {
            filter,
            plugin_config,
            upstream,
            clusters,
            listen,
            workers,
            admin,
            no_verify_signature,
        } => {
            init_logs(config.server.log_format);
            let mut map = std::collections::HashMap::new();
            for c in clusters {
                let (name, url) = c
                    .split_once('=')
                    .with_context(|| format!("--cluster {c}: expected NAME=URL"))?;
                map.insert(name.to_owned(), url.to_owned());
            }
            let gateway = erpgate_host::gateway::server::start(
                erpgate_host::gateway::server::GatewayConfig {
                    filter: std::fs::read(&filter)
                        .with_context(|| format!("reading {}", filter.display()))?,
                    plugin_config: std::fs::read(&plugin_config)
                        .with_context(|| format!("reading {}", plugin_config.display()))?,
                    upstream,
                    clusters: map,
                    listen,
                    workers,
                    admin,
                    verify_signature: !no_verify_signature,
                },
            )
            .await?;
            say!("erpgate gateway on http://{}", gateway.addr);
            if let Some(a) = gateway.admin {
                say!("stats on http://{a}/stats/prometheus");
            }
            tokio::signal::ctrl_c().await?;
            gateway.stop().await;
        }
        Command::Token(cmd) => {
            let store = open_store(&config).await?;
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
        }
        Command::Apps(cmd) => {
            let store = open_store(&config).await?;
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
                } => {
                    let mut app = TrustedApp::new(&client_id, &name, SystemClock.now());
                    app.client_type = match client_type {
                        AppType::Confidential => ClientType::Confidential,
                        AppType::Public => ClientType::Public,
                        AppType::None => ClientType::None,
                    };
                    app.scope = erpgate::ScopeSet::parse(&scope).context("--scope")?;
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
                    say!("disabled {client_id}");
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
        }
        Command::Sessions {
            url,
            admin_token,
            command,
        } => {
            let url = url.trim_end_matches('/');
            let (method, target) = match &command {
                SessionsCommand::List => ("GET", format!("{url}/admin/sessions")),
                SessionsCommand::End { id } => ("DELETE", format!("{url}/admin/sessions/{id}")),
            };
            let (status, body) = admin_call(method, &target, &admin_token).await?;
            match (command, status) {
                (SessionsCommand::List, 200) => {
                    let table: erpgate_host::api::sessions::Table = serde_json::from_slice(&body)?;
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
        }
        Command::Users(UsersCommand::SetPassword { login }) => {
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
            let hash = erpgate_host::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
            let store = open_store(&config).await?;
            if !store
                .set_password_hash(&login, &hash, SystemClock.now())
                .await?
            {
                anyhow::bail!("no user {login}");
            }
            say!("password changed for {login}; their refresh tokens no longer work");
        }
        Command::Keys(KeysCommand::Rotate) => {
            let store = open_store(&config).await?;
            let now = SystemClock.now();
            erpgate_host::keys::KeyRing::load_or_init(store.as_ref(), now).await?;
            // Old keys stay published for one access-token lifetime plus the edge's leeway.
            let kid = erpgate_host::keys::rotate(
                store.as_ref(),
                now,
                erpgate_host::keys::PUBLISH_BEFORE_SIGNING_S,
                config.instance.access_token_lifetime_s + 300,
            )
            .await?;
            say!(
                "new signing key {kid}: published now by every host on this store within {}s, signing from {}s",
                erpgate_host::keys::RELOAD_INTERVAL_S,
                erpgate_host::keys::PUBLISH_BEFORE_SIGNING_S
            );
        }
    }
    Ok(())
}

/// One admin-API call to a running host: (status, body).
async fn admin_call(method: &str, url: &str, admin: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {admin}"))
        .body(http_body_util::Empty::new())?;
    let response = client
        .request(request)
        .await
        .with_context(|| format!("reaching {url} (is the host running?)"))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, body))
}

/// How to try the interactive sign-in in a browser.
fn print_interactive(base: &str) {
    say!("sign in (browser; user alice / alice-password, or admin / admin-password):");
    say!(
        "  {base}/id/connect/authorize?client_id=demo.webapp&redirect_uri=http://localhost:3000/signin-oidc&response_type=code&scope=openid%20profile%20read%20offline_access&state=try-it"
    );
    say!(
        "  the browser lands on http://localhost:3000/signin-oidc?code=…; redeem it with: curl -s -u demo.webapp:demo-webapp-secret -d grant_type=authorization_code -d redirect_uri=http://localhost:3000/signin-oidc -d code=<code> {base}/id/connect/token"
    );
    say!("  personal access tokens: {base}/profile/security/tokens");
}

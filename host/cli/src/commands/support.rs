//! What several commands share: the configuration, logs, the store, a
//! fresh secret, and calls to a running host's admin API.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use erpgate_identity::clock::{Clock, SystemClock};
use erpgate_identity::config::{Config, LogFormat};
use erpgate_store::Store;

/// The instance's configuration, and whether it is the demo. One of
/// `--config` and `--demo` is required: the demo's credentials are
/// published, so it is never what a command runs by default.
pub fn load_config(path: Option<&PathBuf>, demo: bool) -> anyhow::Result<(Config, bool)> {
    match path {
        None if demo => Ok((Config::demo(), true)),
        None => anyhow::bail!(
            "no instance configured: pass --config FILE (or set ERPGATE_CONFIG), or --demo for the built-in demo instance, whose passwords and secrets are published"
        ),
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

pub fn init_logs(format: LogFormat) {
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

/// The configured store, seeded from the configuration; outside demo mode,
/// a warning for each demo record it still holds.
pub async fn open_store(config: &Config, demo: bool) -> anyhow::Result<Arc<dyn Store>> {
    let store = erpgate_cli::open_store(config).await?;
    erpgate_cli::seed(store.as_ref(), config, SystemClock.now()).await?;
    warn_demo_leftovers(store.as_ref(), demo).await?;
    Ok(store)
}

/// Characters an `ERPGATE_ADMIN_TOKEN` must have at least.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Where the admin credential came from, and so whether it may be printed.
pub enum AdminCredential {
    /// `ERPGATE_ADMIN_TOKEN`: the operator knows it; never printed.
    FromEnv(String),
    /// Generated for the demo instance: printed in the banner.
    Demo(String),
    /// Generated for a real instance: written, readable by its owner only,
    /// to this file, never printed.
    Written(String, PathBuf),
}

impl AdminCredential {
    /// The credential itself.
    pub fn value(&self) -> &str {
        match self {
            Self::FromEnv(v) | Self::Demo(v) | Self::Written(v, _) => v,
        }
    }

    /// How the banner names it: the value in demo mode only.
    pub fn describe(&self) -> String {
        match self {
            Self::FromEnv(_) => "admin credential: ERPGATE_ADMIN_TOKEN".to_owned(),
            Self::Demo(v) => format!("admin credential: {v}"),
            Self::Written(_, path) => format!("admin credential: in {}", path.display()),
        }
    }
}

/// The admin credential: `ERPGATE_ADMIN_TOKEN` if set (refused when shorter
/// than [`MIN_ADMIN_TOKEN_CHARS`]), else a fresh random one.
pub fn admin_credential(config: &Config, demo: bool) -> anyhow::Result<AdminCredential> {
    if let Ok(value) = std::env::var("ERPGATE_ADMIN_TOKEN") {
        if value.chars().count() < MIN_ADMIN_TOKEN_CHARS || value.trim() != value {
            anyhow::bail!(
                "ERPGATE_ADMIN_TOKEN must have at least {MIN_ADMIN_TOKEN_CHARS} characters and no surrounding space (e.g. `openssl rand -hex 24`)"
            );
        }
        return Ok(AdminCredential::FromEnv(value));
    }
    let value = erpgate_store::secrets::random_hex(24);
    if demo {
        return Ok(AdminCredential::Demo(value));
    }
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("admin-credential");
    write_private(&path, &value).with_context(|| format!("writing {}", path.display()))?;
    Ok(AdminCredential::Written(value, path))
}

/// Writes `text` to a file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())
}

/// Refuses a listener other than loopback for the demo instance, whose
/// passwords and secrets anyone can read.
pub fn demo_on_loopback(demo: bool, what: &str, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    if demo && !addr.ip().is_loopback() {
        anyhow::bail!(
            "--demo listens on loopback only ({what} {addr}): the demo instance's passwords and secrets are published; use --config for an instance others can reach"
        );
    }
    Ok(())
}

/// Warns when a store for a real configuration still holds demo records
/// (a demo app's secret, a demo user's password).
pub async fn warn_demo_leftovers(store: &dyn Store, demo: bool) -> anyhow::Result<()> {
    if demo {
        return Ok(());
    }
    for found in erpgate_identity::seed::demo_leftovers(store).await? {
        let warning =
            format!("the store holds a demo record: {found}; remove it or change its credential");
        if tracing::dispatcher::has_been_set() {
            tracing::warn!("{warning}");
        } else {
            eprintln!("warning: {warning}");
        }
    }
    Ok(())
}

/// One admin-API call to a running host: (status, body).
pub async fn admin_call(method: &str, url: &str, admin: &str) -> anyhow::Result<(u16, Vec<u8>)> {
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
pub fn print_interactive(base: &str) {
    say!("sign in (browser; user alice / alice-password, or admin / admin-password):");
    say!(
        "  {base}/id/connect/authorize?client_id=demo.webapp&redirect_uri=http://localhost:3000/signin-oidc&response_type=code&scope=openid%20profile%20read%20offline_access&state=try-it"
    );
    say!(
        "  the browser lands on http://localhost:3000/signin-oidc?code=…; redeem it with: curl -s -u demo.webapp:demo-webapp-secret -d grant_type=authorization_code -d redirect_uri=http://localhost:3000/signin-oidc -d code=<code> {base}/id/connect/token"
    );
    say!("  personal access tokens: {base}/profile/security/tokens");
}

//! What several commands share: the configuration, logs, the store, a
//! fresh secret, and calls to a running host's admin API.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use erpgate_identity::clock::{Clock, SystemClock};
use erpgate_identity::config::{Config, LogFormat};
use erpgate_store::Store;

pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<(Config, bool)> {
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
pub fn new_secret() -> String {
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

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = erpgate_cli::open_store(config).await?;
    erpgate_cli::seed(store.as_ref(), config, SystemClock.now()).await?;
    Ok(store)
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

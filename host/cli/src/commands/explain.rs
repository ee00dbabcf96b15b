//! `erpgate explain`: why a policy allows or refuses a request.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use erpgate::{Outcome, Policy, Purpose, Time};
use erpgate_cli::explain::{ExplainRequest, Explainer, Replies, render};

/// Arguments of `erpgate explain`.
#[derive(Args)]
pub struct ExplainArgs {
    /// The policy: a policy document, or a plugin configuration that holds
    /// one under `policy`.
    #[arg(long)]
    pub policy: PathBuf,
    /// The request as a `curl` command line, e.g.
    /// `curl -H 'Authorization: Bearer eyJ…' https://api.example/api/domain/odata/Crm_Customers`.
    #[arg(long, conflicts_with_all = ["path", "header"])]
    pub request: Option<String>,
    /// The method, without `--request`.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Path and query, without `--request`.
    #[arg(long)]
    pub path: Option<String>,
    /// A request header, `Name: value` (repeatable), without `--request`.
    #[arg(long = "header", short = 'H')]
    pub header: Vec<String>,
    /// The issuer's JWKS, to answer a JWKS fetch (else it fails).
    #[arg(long)]
    pub jwks: Option<PathBuf>,
    /// An introspection reply (RFC 7662 JSON), to answer an introspection
    /// call (else it fails).
    #[arg(long)]
    pub introspection: Option<PathBuf>,
    /// Decide at this time, Unix seconds (default: now).
    #[arg(long)]
    pub now: Option<u64>,
}

/// Prints the decision and its trace.
pub fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let text = std::fs::read(&args.policy)
        .with_context(|| format!("reading {}", args.policy.display()))?;
    let document: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", args.policy.display()))?;
    let policy_json = match document.get("policy") {
        Some(policy) if document.get("version").is_none() => policy.to_string(),
        _ => String::from_utf8_lossy(&text).into_owned(),
    };
    let policy = Policy::compile(&policy_json).map_err(|e| anyhow::anyhow!("the policy: {e}"))?;
    let request = match &args.request {
        Some(line) => {
            ExplainRequest::from_curl(line).map_err(|e| anyhow::anyhow!("--request: {e}"))?
        }
        None => {
            let mut request = ExplainRequest {
                method: args.method.clone(),
                path: args.path.clone().context("give --request, or --path")?,
                ..ExplainRequest::default()
            };
            for h in &args.header {
                let (name, value) = h
                    .split_once(':')
                    .with_context(|| format!("--header {h}: expected `Name: value`"))?;
                request
                    .headers
                    .push((name.trim().to_owned(), value.trim().as_bytes().to_vec()));
            }
            request
        }
    };
    let read = |p: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
        p.as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
            .transpose()
    };
    let replies = Replies {
        jwks: read(&args.jwks)?,
        introspection: read(&args.introspection)?,
    };
    let now = Time::from_secs(args.now.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }));
    let nonce_key = match document.get("dpop_nonce_key").and_then(|k| k.as_str()) {
        Some(text) => Some(
            erpgate::dpop::NonceKey::from_b64url(text)
                .context("dpop_nonce_key: base64url of at least 32 bytes")?,
        ),
        None => None,
    };
    let mut explainer = Explainer::new(policy, nonce_key);
    let mut answer = |purpose: Purpose| {
        let body = match purpose {
            Purpose::Jwks => replies.jwks.clone(),
            Purpose::Introspection => replies.introspection.clone(),
            Purpose::RevocationFeed => None,
        };
        body.map_or(Outcome::Failed, |body| Outcome::Response {
            status: 200,
            body,
        })
    };
    let explanation = explainer.explain(&request, &mut answer, now);
    say!(
        "{}",
        render(&explanation, &explainer.engine, now).trim_end()
    );
    Ok(())
}

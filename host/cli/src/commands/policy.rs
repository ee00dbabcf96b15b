//! `erpgate policy check`: every error of a policy, each with its field
//! path, as the policy compiler finds them (the filter and the worker
//! report the first syntax error without the path; see
//! `erpgate::json::from_slice_with_path`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use erpgate::Policy;

/// `erpgate policy …`.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Compile a policy and print every error with its field path; exits
    /// non-zero when there is one.
    Check(CheckArgs),
}

/// Arguments of `erpgate policy check`.
#[derive(Args)]
pub struct CheckArgs {
    /// A policy document, or a plugin configuration that holds one under
    /// `policy` (field paths then start with `policy.`).
    pub file: PathBuf,
}

/// Runs a `policy` command.
pub fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check(args) => {
            let text = std::fs::read(&args.file)
                .with_context(|| format!("reading {}", args.file.display()))?;
            let report = check(&text);
            print!("{}", report.text);
            if report.errors > 0 {
                eprintln!("{}: {} error(s)", args.file.display(), report.errors);
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// What `check` found.
pub struct Report {
    /// One line per error (or one summary line).
    pub text: String,
    /// How many errors.
    pub errors: usize,
}

/// Compiles a policy document (or the `policy` of a plugin configuration)
/// and lists its errors, one per line: `` `field` (route "name"): message ``.
pub fn check(text: &[u8]) -> Report {
    let document: Option<serde_json::Value> = serde_json::from_slice(text).ok();
    let (bytes, prefix) = match document.as_ref().and_then(|d| {
        d.get("policy")
            .filter(|_| d.get("version").is_none())
            .map(|p| p.to_string())
    }) {
        Some(policy) => (policy.into_bytes(), "policy."),
        None => (text.to_vec(), ""),
    };
    match Policy::compile_bytes(&bytes) {
        Ok(policy) => Report {
            text: format!(
                "ok: {} issuer(s), {} route(s)\n",
                policy.issuers.len(),
                policy.routes.len()
            ),
            errors: 0,
        },
        Err(error) => {
            let mut text = String::new();
            let mut errors = 0;
            for e in error.all() {
                errors += 1;
                let route = e
                    .route
                    .as_ref()
                    .map(|r| format!(" (route \"{r}\")"))
                    .unwrap_or_default();
                text.push_str(&format!("`{prefix}{}`{route}: {}\n", e.field, e.kind));
            }
            Report { text, errors }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_with_its_path() {
        let bad = br#"{"version": 1, "realm": "", "issuers": [], "routes": [{"name": "r", "match": {"prefix": "x"}}], "unknown": 1}"#;
        let report = check(bad);
        assert_eq!(report.errors, 1, "{}", report.text);
        assert!(
            report.text.starts_with("`routes[0].match`"),
            "{}",
            report.text
        );
        let policy: serde_json::Value =
            serde_json::from_str(include_str!("../../../../policies/erpnet.json")).unwrap();
        assert_eq!(check(policy.to_string().as_bytes()).errors, 0);
        let mut broken = policy.clone();
        broken["realm"] = "".into();
        broken["routes"][0]["path"] = serde_json::json!({"prefix": "no-slash"});
        let report = check(
            serde_json::json!({ "policy": broken })
                .to_string()
                .as_bytes(),
        );
        assert_eq!(report.errors, 2, "{}", report.text);
        assert!(report.text.contains("`policy.realm`"), "{}", report.text);
        assert!(
            report.text.contains("`policy.routes[0].path"),
            "{}",
            report.text
        );
    }
}

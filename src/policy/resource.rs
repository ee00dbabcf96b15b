//! The `protected_resource` and `dpop` sections: RFC 9728 metadata for the
//! API behind the edge, and how its DPoP proofs (RFC 9449) are checked. The document is rendered once, here; every artifact answers
//! `GET /.well-known/oauth-protected-resource` (and its path-suffixed form)
//! with it, and every challenge names it (`resource_metadata`).

use serde_json::{Value, json};

use super::raw::{RawDpop, RawProtectedResource};
use super::{Access, Ctx, Issuer, PolicyError, PolicyErrorKind, Route, ScopeRequirement, range};
use crate::scope::ScopeSet;

/// The well-known path segment RFC 9728 §3 registers.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// RFC 9728 metadata, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The resource identifier, as configured.
    pub resource: String,
    /// Where the document is, by RFC 9728 §3.1: the resource identifier
    /// with the well-known segment inserted before its path. Challenges
    /// carry it as `resource_metadata`.
    pub metadata_url: String,
    /// The request paths answered with the document: the path-suffixed
    /// form, and the bare well-known path when they differ.
    pub paths: Vec<String>,
    /// The JSON document.
    pub document: String,
    /// `Cache-Control: max-age` of the answer.
    pub max_age_s: u64,
}

impl ProtectedResource {
    /// Whether a request for `path` (no query) is answered with the document.
    pub fn serves(&self, path: &str) -> bool {
        path.starts_with(WELL_KNOWN) && self.paths.iter().any(|p| p == path)
    }
}

/// How DPoP proofs are checked, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopPolicy {
    /// The algorithms a proof may use (asymmetric only).
    pub algorithms: Vec<crate::keys::Algorithm>,
    /// The same, space-separated: the challenge's `algs`.
    pub algs: String,
    /// How old a proof's `iat` may be, seconds.
    pub max_age_s: u64,
    /// How far ahead of the clock a proof's `iat` may be, seconds.
    pub leeway_s: u64,
    /// How many proofs' `jti` each engine instance remembers.
    pub replay_cache_entries: usize,
    /// Whether proofs must carry a server nonce (RFC 9449 §9); the adapter
    /// supplies the key nonces are minted under.
    pub nonces: bool,
    /// How long one nonce is handed out, seconds; the previous one stays
    /// accepted for as long again.
    pub nonce_period_s: u64,
}

pub(super) fn compile_dpop(raw: &RawDpop) -> Result<DpopPolicy, PolicyError> {
    let ctx = Ctx::top("dpop");
    if raw.algorithms.is_empty() {
        return Err(ctx.sub("algorithms").err(PolicyErrorKind::Empty));
    }
    let mut algorithms = Vec::with_capacity(raw.algorithms.len());
    for (i, name) in raw.algorithms.iter().enumerate() {
        match crate::keys::Algorithm::from_name(name).filter(|a| !a.is_hmac()) {
            Some(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
            _ => {
                return Err(ctx
                    .sub(&format!("algorithms[{i}]"))
                    .err(PolicyErrorKind::UnknownAlgorithm(name.clone())));
            }
        }
    }
    Ok(DpopPolicy {
        algs: algorithms
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(" "),
        algorithms,
        max_age_s: range(&ctx.sub("max_age_s"), raw.max_age_s, 1, 3600)?,
        leeway_s: range(&ctx.sub("leeway_s"), raw.leeway_s, 0, 300)?,
        replay_cache_entries: usize::try_from(range(
            &ctx.sub("replay_cache_entries"),
            raw.replay_cache_entries,
            1,
            10_000_000,
        )?)
        .unwrap_or(usize::MAX),
        nonces: raw.nonces,
        nonce_period_s: range(&ctx.sub("nonce_period_s"), raw.nonce_period_s, 10, 3600)?,
    })
}

/// An absolute URL split into its scheme, authority and path; `None` unless
/// it is `https://`, or `http://` to a loopback host, with no user info,
/// query or fragment, and nothing that needs quoting in a header.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let secure = match scheme {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    // host [":" port]: a name or IPv4 address, or a bracketed IPv6 one.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        }
    };
    let path_ok = (path.is_empty() || path.starts_with('/'))
        && path.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'?' | b'#' | b'<' | b'>' | b'`')
        });
    let loopback = matches!(host, "localhost" | "[::1]")
        || (host.starts_with("127.") && host.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    let host_ok = host_ok && port_ok;
    (host_ok && path_ok && (secure || loopback)).then_some((scheme, authority, path))
}

/// The origin (`scheme://authority`) of `url` when it could name a
/// protected resource: `https://`, or `http://` to a loopback host. Hosts
/// use it to describe an API on their own origin.
pub fn resource_origin(url: &str) -> Option<String> {
    let (scheme, authority, _) = split_url(url)?;
    Some(format!("{scheme}://{authority}"))
}

fn url(ctx: &Ctx, value: &str) -> Result<(), PolicyError> {
    split_url(value)
        .map(drop)
        .ok_or_else(|| ctx.err(PolicyErrorKind::InvalidUrl))
}

/// Every scope a protected route requires, sorted and without duplicates.
fn route_scopes(routes: &[Route]) -> Vec<String> {
    let mut all: Vec<&str> = Vec::new();
    for route in routes {
        let Access::Protected { scopes, .. } = &route.access else {
            continue;
        };
        let sets: &[ScopeSet] = match scopes {
            ScopeRequirement::AllOf(set) => std::slice::from_ref(set),
            ScopeRequirement::AnyOf(sets) => sets,
        };
        all.extend(sets.iter().flat_map(ScopeSet::iter));
    }
    all.sort_unstable();
    all.dedup();
    all.into_iter().map(str::to_owned).collect()
}

pub(super) fn compile(
    raw: &RawProtectedResource,
    issuers: &[Issuer],
    routes: &[Route],
    dpop: Option<&DpopPolicy>,
) -> Result<ProtectedResource, PolicyError> {
    let ctx = Ctx::top("protected_resource");
    let (scheme, authority, path) = split_url(&raw.resource)
        .ok_or_else(|| ctx.sub("resource").err(PolicyErrorKind::InvalidUrl))?;
    let suffix = if path == "/" { "" } else { path };
    let servers: Vec<String> = match &raw.authorization_servers {
        Some(servers) => servers.clone(),
        None => issuers.iter().map(|i| i.issuer.clone()).collect(),
    };
    for (i, server) in servers.iter().enumerate() {
        url(&ctx.sub(&format!("authorization_servers[{i}]")), server)?;
    }
    let scopes = match &raw.scopes_supported {
        Some(scopes) => {
            for (i, scope) in scopes.iter().enumerate() {
                ScopeSet::from_tokens([scope]).map_err(|e| {
                    ctx.sub(&format!("scopes_supported[{i}]"))
                        .err(PolicyErrorKind::InvalidScope(e))
                })?;
            }
            scopes.clone()
        }
        None => route_scopes(routes),
    };
    if let Some(doc) = &raw.resource_documentation {
        url(&ctx.sub("resource_documentation"), doc)?;
    }
    if let Some(name) = &raw.resource_name {
        super::non_empty(&ctx.sub("resource_name"), name)?;
    }
    range(&ctx.sub("max_age_s"), raw.max_age_s, 0, 86_400)?;
    let mut document = json!({
        "resource": raw.resource,
        "authorization_servers": servers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    });
    if let Value::Object(members) = &mut document {
        if let Some(name) = &raw.resource_name {
            members.insert("resource_name".into(), json!(name));
        }
        if let Some(doc) = &raw.resource_documentation {
            members.insert("resource_documentation".into(), json!(doc));
        }
        if let Some(dpop) = dpop {
            let algs: Vec<&str> = dpop.algorithms.iter().map(|a| a.name()).collect();
            members.insert("dpop_signing_alg_values_supported".into(), json!(algs));
            // Every protected route takes DPoP-bound tokens only.
            let mut protected = routes
                .iter()
                .filter(|r| matches!(r.access, Access::Protected { .. }))
                .peekable();
            let required = protected.peek().is_some() && protected.all(|r| r.require_dpop);
            members.insert("dpop_bound_access_tokens_required".into(), json!(required));
        }
    }
    let suffixed = format!("{WELL_KNOWN}{suffix}");
    let mut paths = vec![suffixed.clone()];
    if suffixed != WELL_KNOWN {
        paths.push(WELL_KNOWN.to_owned());
    }
    Ok(ProtectedResource {
        resource: raw.resource.clone(),
        metadata_url: format!("{scheme}://{authority}{suffixed}"),
        paths,
        document: document.to_string(),
        max_age_s: raw.max_age_s,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::{Policy, PolicyErrorKind};

    fn compile(metadata: serde_json::Value) -> Result<Policy, crate::PolicyError> {
        let mut policy: serde_json::Value =
            serde_json::from_str(include_str!("../../policies/erpnet.json")).unwrap();
        policy["protected_resource"] = metadata;
        Policy::compile(&policy.to_string())
    }

    fn field_of(metadata: serde_json::Value) -> String {
        match compile(metadata) {
            Ok(_) => panic!("compiled"),
            Err(e) => {
                assert_eq!(e.kind, PolicyErrorKind::InvalidUrl, "{e}");
                e.field
            }
        }
    }

    #[test]
    fn the_metadata_url_inserts_the_well_known_segment_before_the_path() {
        let with_path = compile(json!({ "resource": "https://api.example/v1/erp" })).unwrap();
        let m = with_path.protected_resource.unwrap();
        assert_eq!(
            m.metadata_url,
            "https://api.example/.well-known/oauth-protected-resource/v1/erp"
        );
        assert!(m.serves("/.well-known/oauth-protected-resource/v1/erp"));
        assert!(m.serves("/.well-known/oauth-protected-resource"));
        assert!(!m.serves("/.well-known/oauth-protected-resource/v1"));
        let root = compile(json!({ "resource": "https://api.example:8443/" })).unwrap();
        let m = root.protected_resource.unwrap();
        assert_eq!(
            m.metadata_url,
            "https://api.example:8443/.well-known/oauth-protected-resource"
        );
        assert_eq!(m.paths, ["/.well-known/oauth-protected-resource"]);
    }

    #[test]
    fn a_resource_that_is_not_a_safe_https_url_is_refused_by_name() {
        for resource in [
            "http://api.example",
            "ftp://api.example",
            "https://",
            "https://user@api.example",
            "https://api.example/a?b",
            "https://api.example/a#b",
            "https://api.example/\"quoted\"",
            "https://api.example/back\\slash",
            "https://api.example/a b",
            "https://api.example/\r\nx: y",
            "https://127.0.0.1.evil.example:80x/",
        ] {
            assert_eq!(
                field_of(json!({ "resource": resource })),
                "protected_resource.resource",
                "{resource}"
            );
        }
        // Plain HTTP only on loopback, where a local stack runs.
        for resource in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:9",
        ] {
            assert!(
                compile(json!({ "resource": resource })).is_ok(),
                "{resource}"
            );
        }
        assert_eq!(
            field_of(json!({
                "resource": "https://api.example",
                "authorization_servers": ["https://id.example", "http://id.example"]
            })),
            "protected_resource.authorization_servers[1]"
        );
        assert_eq!(
            field_of(json!({
                "resource": "https://api.example",
                "resource_documentation": "javascript:alert(1)"
            })),
            "protected_resource.resource_documentation"
        );
    }

    #[test]
    fn scopes_default_to_what_routes_require_and_are_checked_when_given() {
        let policy = compile(json!({ "resource": "https://api.example" })).unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&policy.protected_resource.unwrap().document).unwrap();
        assert_eq!(doc["scopes_supported"], json!(["read", "sec", "update"]));
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://demo.my.erp.net/id"])
        );
        let e = compile(
            json!({ "resource": "https://api.example", "scopes_supported": ["ok", "a\"b"] }),
        )
        .err()
        .unwrap();
        assert_eq!(e.field, "protected_resource.scopes_supported[1]");
    }
}

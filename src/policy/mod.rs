//! Policies: the JSON file (`raw`), validated and compiled into an immutable
//! [`Policy`]. Every error names the field, and the route when there is one.

mod headers;
mod odata;
mod parts;
mod raw;
mod resource;
mod route;
mod sections;

pub use resource::{DpopPolicy, ProtectedResource, resource_origin};
pub use sections::Sections;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use raw::{DefaultAction, FailureMode, LegacyMode, PathCase};
pub use route::{Access, PathMatch, Route, ScopeRequirement, Segment};

use crate::json;
use crate::jwt::{ClaimRules, Limits};
use crate::keys::{Algorithm, KeySet, VerifyingKey};
use crate::principal::TokenKind;
use crate::scope::{ScopeError, ScopeSet};

/// The only policy format version.
pub const VERSION: u32 = 1;

/// What is wrong with a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    /// Not valid JSON, an unknown field, a missing field or a wrong type.
    #[error("{0}")]
    Syntax(String),
    /// `version` is not 1.
    #[error("unsupported version {0}; expected 1")]
    UnsupportedVersion(u32),
    /// A string or list that must not be empty is.
    #[error("must not be empty")]
    Empty,
    /// Not an absolute http(s) URL.
    #[error("must be an absolute https:// (or http://) URL")]
    InvalidUrl,
    /// A path that must start with `/` and hold no space, `?` or `#`.
    #[error("must start with '/' and contain no whitespace, '?' or '#'")]
    InvalidPath,
    /// A path pattern with an empty segment, a partial `*`, or `**` not last.
    #[error("invalid pattern: segments are literals, '*' or a final '**'")]
    InvalidPattern,
    /// Two routes share a name.
    #[error("duplicate route name")]
    DuplicateRouteName,
    /// An earlier route matches every request this one would.
    #[error("shadowed by earlier route \"{0}\"")]
    ShadowedRoute(String),
    /// Not a valid RFC 6749 scope token.
    #[error("invalid scope: {0}")]
    InvalidScope(ScopeError),
    /// Not a supported JWS algorithm name (`none` never is).
    #[error("unknown or unsupported algorithm \"{0}\"")]
    UnknownAlgorithm(String),
    /// HS* listed without `shared_secret`, or `shared_secret` without HS*.
    #[error(
        "HS256/HS384/HS512 require shared_secret, and shared_secret requires exactly one HS algorithm"
    )]
    HmacMismatch,
    /// The shared secret is not strict base64url, or shorter than 32 bytes.
    #[error("shared secret must be base64url of at least 32 bytes")]
    WeakSecret,
    /// The inline JWKS is malformed or yields no usable key.
    #[error("invalid inline JWKS: {0}")]
    InvalidJwks(String),
    /// No `jwks`, `jwks_uri` or `shared_secret`.
    #[error("issuer needs jwks, jwks_uri or shared_secret")]
    NoKeySource,
    /// Not a lowercase HTTP header name.
    #[error("invalid header name \"{0}\": use lowercase token characters")]
    InvalidHeaderName(String),
    /// Two identity headers share a name.
    #[error("header \"{0}\" is configured twice")]
    DuplicateHeaderName(String),
    /// A number outside its range.
    #[error("must be between {min} and {max}")]
    OutOfRange {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// Two issuers share an `issuer` string.
    #[error("duplicate issuer")]
    DuplicateIssuer,
    /// Not an upper-case HTTP method token.
    #[error("invalid HTTP method \"{0}\"")]
    InvalidMethod(String),
    /// A public route that also names scopes or token kinds.
    #[error("a public route cannot require scopes, token kinds or DPoP")]
    PublicWithRequirements,
    /// Not an OData identifier (letters, digits, `_`, not starting with a digit).
    #[error("invalid OData name \"{0}\"")]
    InvalidODataName(String),
    /// More routes than OData-aware checks can track.
    #[error("at most {0} routes with odata")]
    TooManyRoutes(usize),
}

/// A policy error: the field path (`routes[2].path.prefix`), the route name when
/// the error is inside a route, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Dotted path to the offending field.
    pub field: String,
    /// The route's name, for errors inside `routes`.
    pub route: Option<String>,
    /// What is wrong.
    pub kind: PolicyErrorKind,
    /// Every further error the same document has, in order.
    pub also: Vec<PolicyError>,
}

impl PolicyError {
    /// This error, then every further one of the same document.
    pub fn all(&self) -> impl Iterator<Item = &PolicyError> {
        std::iter::once(self).chain(self.also.iter())
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.all().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match &e.route {
                Some(route) => write!(
                    f,
                    "policy field `{}` (route \"{}\"): {}",
                    e.field, route, e.kind
                )?,
                None => write!(f, "policy field `{}`: {}", e.field, e.kind)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// A named upstream call target (an Envoy cluster, or a base URL for workers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The cluster or binding name the adapter resolves.
    pub upstream: String,
    /// The path (and query) of every call to it.
    pub path: String,
    /// The `:authority` / Host to send, if the upstream needs one.
    pub authority: Option<String>,
    /// After this long a call resumes the engine with a timeout.
    pub timeout: Duration,
}

/// One trusted token issuer.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The exact `iss` value.
    pub issuer: String,
    /// Algorithms this issuer may use.
    pub algorithms: Vec<Algorithm>,
    /// Audience, leeway and age rules.
    pub rules: ClaimRules,
    /// Keys from the policy itself (inline JWKS or shared secret).
    pub inline_keys: KeySet,
    /// Where to fetch the JWKS, if anywhere.
    pub jwks: Option<Upstream>,
    /// How often to refresh the JWKS.
    pub jwks_refresh: Duration,
    /// Least time between two fetches triggered by unknown `kid`s.
    pub jwks_cooldown: Duration,
    /// The `typ` every token must declare; `None` when the check is disabled.
    pub required_typ: Option<String>,
}

/// Reference-token introspection (RFC 7662).
#[derive(Debug, Clone)]
pub struct Introspection {
    /// The RFC 7662 endpoint.
    pub endpoint: Upstream,
    /// The `token_type_hint` sent.
    pub token_type_hint: String,
    /// Cache bounds for introspection results.
    pub cache: CacheConfig,
}

/// The revocation feed the edge polls.
#[derive(Debug, Clone)]
pub struct RevocationFeed {
    /// The feed's endpoint; the cursor goes in its query.
    pub endpoint: Upstream,
    /// Time between polls while the feed has nothing more.
    pub poll_interval: Duration,
}

/// Size and lifetimes of one verdict cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most entries held.
    pub max_entries: usize,
    /// Longest a positive entry lives; never past the token's `exp`.
    pub max_ttl: Duration,
    /// How long a rejection is remembered.
    pub negative_ttl: Duration,
    /// How long past its TTL an entry may serve under `failure_mode: serve_stale`.
    pub max_stale: Duration,
}

/// Header names for the identity set on allowed requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// ERP login (user / PAT) or SystemUser (service / SAT).
    pub subject: Option<std::sync::Arc<str>>,
    /// Header for the acting user's GUID, the `id` or `client_system_user_id`
    /// claim (default `x-erp-user-id`).
    pub user_id: Option<std::sync::Arc<str>>,
    /// Header for the trusted application's ApplicationUri, the token's
    /// `client_id` (default `x-erp-client-id`).
    pub client_id: Option<std::sync::Arc<str>>,
    /// Header for the ERP.net database the token is for, its `db` or
    /// `client_db` claim (default `x-erp-db`).
    pub db: Option<std::sync::Arc<str>>,
    /// Granted scopes, space-separated.
    pub scopes: Option<std::sync::Arc<str>>,
    /// `user`, `service`, `pat` or `sat`.
    pub token_kind: Option<std::sync::Arc<str>>,
    /// The identity session.
    pub session_id: Option<std::sync::Arc<str>>,
    /// `true` or `false`.
    pub is_admin: Option<std::sync::Arc<str>>,
    /// ERP user type.
    pub user_type: Option<std::sync::Arc<str>>,
    /// Every header removed from incoming requests: all of the above plus extras.
    pub strip: std::sync::Arc<[String]>,
}

/// How legacy credentials are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Legacy {
    /// `Authorization: Basic`.
    pub basic: LegacyMode,
    /// `Authorization: ErpSession`.
    pub erp_session: LegacyMode,
}

/// A compiled, validated, immutable policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The `realm` in challenges.
    pub realm: String,
    /// Issuers whose JWTs are accepted, matched by exact `iss`; a JWT from any
    /// other issuer is denied.
    pub issuers: Vec<Issuer>,
    /// Reference-token introspection, if configured.
    pub introspection: Option<Introspection>,
    /// The revocation feed, if configured.
    pub revocation_feed: Option<RevocationFeed>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// What happens when no route matches.
    pub default: DefaultAction,
    /// Legacy credential handling.
    pub legacy: Legacy,
    /// Identity header names.
    pub headers: Arc<IdentityHeaders>,
    /// Verified-JWT cache bounds.
    pub jwt_cache: CacheConfig,
    /// What happens when a dependency is down.
    pub failure_mode: FailureMode,
    /// Token size and depth bounds.
    pub limits: Limits,
    /// Whether denial bodies carry `error_description`.
    pub error_description: bool,
    /// Path case handling.
    pub path_case: PathCase,
    /// OData-aware scope checks, when configured: the entity sets a request
    /// reaches by navigation, `$expand`, filters and `$batch` each need
    /// their route's access.
    pub odata: Option<crate::odata::ODataPolicy>,
    /// False in shadow mode (routes may say otherwise): denials are
    /// recorded and the request goes on untouched.
    pub enforce: bool,
    /// RFC 9728 metadata for the API behind the edge, when configured.
    pub protected_resource: Option<ProtectedResource>,
    /// How DPoP proofs are checked.
    pub dpop: DpopPolicy,
    /// A fingerprint of everything a verdict depends on (8 bytes of
    /// SHA-256, hex): namespaces entries in a
    /// [`SharedCache`](crate::SharedCache) so plugins whose verdicts could
    /// differ never read each other's, while a reload that only edits routes
    /// keeps them.
    pub fingerprint: String,
    /// Fingerprints of the parts a reload compares.
    pub sections: Sections,
}

struct Ctx {
    field: String,
    route: Option<String>,
}

impl Ctx {
    fn top(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            route: None,
        }
    }
    fn err(&self, kind: PolicyErrorKind) -> PolicyError {
        PolicyError {
            field: self.field.clone(),
            route: self.route.clone(),
            kind,
            also: Vec::new(),
        }
    }
    fn sub(&self, name: &str) -> Self {
        Self {
            field: format!("{}.{}", self.field, name),
            route: self.route.clone(),
        }
    }
}

fn range(ctx: &Ctx, value: u64, min: u64, max: u64) -> Result<u64, PolicyError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ctx.err(PolicyErrorKind::OutOfRange { min, max }))
    }
}

fn non_empty(ctx: &Ctx, value: &str) -> Result<(), PolicyError> {
    if value.trim().is_empty() {
        Err(ctx.err(PolicyErrorKind::Empty))
    } else {
        Ok(())
    }
}

fn check_path(ctx: &Ctx, path: &str) -> Result<(), PolicyError> {
    if path.starts_with('/')
        && !path
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        Ok(())
    } else {
        Err(ctx.err(PolicyErrorKind::InvalidPath))
    }
}

fn upstream(ctx: &Ctx, raw: &raw::RawUpstreamParts<'_>) -> Result<Upstream, PolicyError> {
    non_empty(&ctx.sub("upstream"), raw.upstream)?;
    check_path(&ctx.sub("path"), raw.path)?;
    let timeout = range(&ctx.sub("timeout_ms"), raw.timeout_ms, 10, 60_000)?;
    Ok(Upstream {
        upstream: raw.upstream.to_owned(),
        path: raw.path.to_owned(),
        authority: raw.authority.map(str::to_owned),
        timeout: Duration::from_millis(timeout),
    })
}

fn cache(ctx: &Ctx, raw: &raw::RawCache, default_ttl: u64) -> Result<CacheConfig, PolicyError> {
    let max_entries = range(
        &ctx.sub("max_entries"),
        raw.max_entries as u64,
        1,
        10_000_000,
    )?;
    let ttl = range(
        &ctx.sub("max_ttl_s"),
        raw.max_ttl_s.unwrap_or(default_ttl),
        0,
        86_400,
    )?;
    let negative = range(&ctx.sub("negative_ttl_s"), raw.negative_ttl_s, 0, 3600)?;
    let stale = range(&ctx.sub("max_stale_s"), raw.max_stale_s, 0, 86_400)?;
    Ok(CacheConfig {
        max_entries: max_entries as usize,
        max_ttl: Duration::from_secs(ttl),
        negative_ttl: Duration::from_secs(negative),
        max_stale: Duration::from_secs(stale),
    })
}

fn scope_set(ctx: &Ctx, tokens: &[String]) -> Result<ScopeSet, PolicyError> {
    ScopeSet::from_tokens(tokens).map_err(|e| ctx.err(PolicyErrorKind::InvalidScope(e)))
}

impl Policy {
    /// Parses and validates a policy from JSON text.
    pub fn compile(text: &str) -> Result<Policy, PolicyError> {
        Self::compile_bytes(text.as_bytes())
    }

    /// Parses and validates a policy from JSON bytes.
    pub fn compile_bytes(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let raw: raw::RawPolicy =
            crate::json::from_slice_with_path(bytes).map_err(|(field, message)| PolicyError {
                field,
                route: None,
                kind: PolicyErrorKind::Syntax(message),
                also: Vec::new(),
            })?;
        let mut policy = Self::from_raw(raw)?;
        let document: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        policy.sections = Sections::of(&document);
        policy.fingerprint = policy.sections.verdicts.clone();
        Ok(policy)
    }

    /// Checks every section, collecting every error (the first is returned,
    /// the others in its `also`), so one reload attempt names them all.
    fn from_raw(raw: raw::RawPolicy) -> Result<Policy, PolicyError> {
        if raw.version != VERSION {
            return Err(Ctx::top("version").err(PolicyErrorKind::UnsupportedVersion(raw.version)));
        }
        use parts::{compile_feed, compile_introspection, compile_limits, keep};
        let mut errors: Vec<PolicyError> = Vec::new();
        keep(&mut errors, non_empty(&Ctx::top("realm"), &raw.realm));
        if raw.realm.contains(['"', '\\']) || raw.realm.chars().any(char::is_control) {
            keep(
                &mut errors,
                Err::<(), _>(
                    Ctx::top("realm").err(PolicyErrorKind::InvalidHeaderName(raw.realm.clone())),
                ),
            );
        }
        let mut issuers: Vec<Issuer> = Vec::with_capacity(raw.issuers.len());
        for (i, ri) in raw.issuers.iter().enumerate() {
            let Some(issuer) = keep(
                &mut errors,
                compile_issuer(&Ctx::top(format!("issuers[{i}]")), ri),
            ) else {
                continue;
            };
            if issuers.iter().any(|x| x.issuer == issuer.issuer) {
                keep(
                    &mut errors,
                    Err::<(), _>(
                        Ctx::top(format!("issuers[{i}].issuer"))
                            .err(PolicyErrorKind::DuplicateIssuer),
                    ),
                );
            }
            issuers.push(issuer);
        }
        let introspection = match &raw.introspection {
            None => None,
            Some(ri) => keep(&mut errors, compile_introspection(ri)),
        };
        let revocation_feed = match &raw.revocation_feed {
            None => None,
            Some(rf) => keep(&mut errors, compile_feed(rf)),
        };
        if raw.routes.is_empty() {
            keep(
                &mut errors,
                Err::<(), _>(Ctx::top("routes").err(PolicyErrorKind::Empty)),
            );
        }
        let mut routes: Vec<Route> = Vec::with_capacity(raw.routes.len());
        for (i, rr) in raw.routes.iter().enumerate() {
            let Some(route) = keep(
                &mut errors,
                compile_route(i, rr, raw.path_case, raw.enforce),
            ) else {
                continue;
            };
            let ctx = Ctx {
                field: format!("routes[{i}]"),
                route: Some(rr.name.clone()),
            };
            if routes.iter().any(|r| r.name == route.name) {
                keep(
                    &mut errors,
                    Err::<(), _>(ctx.sub("name").err(PolicyErrorKind::DuplicateRouteName)),
                );
            } else if let Some(earlier) = routes.iter().find(|r| r.shadows(&route)) {
                keep(
                    &mut errors,
                    Err::<(), _>(ctx.err(PolicyErrorKind::ShadowedRoute(earlier.name.clone()))),
                );
            }
            routes.push(route);
        }
        let odata = match &raw.odata {
            None => None,
            Some(ro) => keep(&mut errors, odata::compile(ro, raw.path_case, routes.len())),
        };
        let dpop = keep(&mut errors, resource::compile_dpop(&raw.dpop));
        let protected_resource = match &raw.protected_resource {
            None => None,
            Some(rp) => keep(
                &mut errors,
                resource::compile(rp, &issuers, &routes, dpop.as_ref()),
            ),
        };
        let headers = keep(&mut errors, headers::compile(&raw.identity_headers));
        let limits = keep(&mut errors, compile_limits(&raw.limits));
        let jwt_cache = keep(
            &mut errors,
            cache(&Ctx::top("jwt_cache"), &raw.jwt_cache, 300),
        );
        let mut errors = errors.into_iter();
        if let Some(mut first) = errors.next() {
            first.also = errors.collect();
            return Err(first);
        }
        let (Some(headers), Some(limits), Some(jwt_cache), Some(dpop)) =
            (headers, limits, jwt_cache, dpop)
        else {
            return Err(Ctx::top("(document)").err(PolicyErrorKind::Empty));
        };
        Ok(Policy {
            realm: raw.realm,
            issuers,
            introspection,
            revocation_feed,
            routes,
            default: raw.default,
            legacy: Legacy {
                basic: raw.legacy.basic,
                erp_session: raw.legacy.erp_session,
            },
            headers: Arc::new(headers),
            jwt_cache,
            failure_mode: raw.failure_mode,
            limits,
            error_description: raw.error_description,
            path_case: raw.path_case,
            odata,
            enforce: raw.enforce,
            protected_resource,
            dpop,
            fingerprint: String::new(),
            sections: Sections::default(),
        })
    }

    /// The first route matching `method` and `path` (no query string).
    pub fn match_route(&self, method: &str, path: &str) -> Option<(usize, &Route)> {
        let fold = self.path_case == PathCase::Insensitive;
        self.routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.allows_method(method) && r.path.matches(path, fold))
    }

    /// The issuer with this exact `iss`.
    pub fn issuer(&self, iss: &str) -> Option<(usize, &Issuer)> {
        self.issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.issuer == iss)
    }
}

fn compile_issuer(ctx: &Ctx, ri: &raw::RawIssuer) -> Result<Issuer, PolicyError> {
    let ictx = ctx.sub("issuer");
    non_empty(&ictx, &ri.issuer)?;
    if !(ri.issuer.starts_with("https://") || ri.issuer.starts_with("http://"))
        || ri
            .issuer
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ictx.err(PolicyErrorKind::InvalidUrl));
    }
    if ri.audiences.is_empty() {
        return Err(ctx.sub("audiences").err(PolicyErrorKind::Empty));
    }
    for (i, aud) in ri.audiences.iter().enumerate() {
        non_empty(&ctx.sub(&format!("audiences[{i}]")), aud)?;
    }
    if ri.algorithms.is_empty() {
        return Err(ctx.sub("algorithms").err(PolicyErrorKind::Empty));
    }
    let mut algorithms = Vec::with_capacity(ri.algorithms.len());
    for (i, name) in ri.algorithms.iter().enumerate() {
        let alg = Algorithm::from_name(name).ok_or_else(|| {
            ctx.sub(&format!("algorithms[{i}]"))
                .err(PolicyErrorKind::UnknownAlgorithm(name.clone()))
        })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    let hmac_algs: Vec<Algorithm> = algorithms.iter().copied().filter(|a| a.is_hmac()).collect();
    let mut inline_keys = KeySet::default();
    match (&ri.shared_secret, hmac_algs.as_slice()) {
        (None, []) => {}
        (Some(secret), [alg]) => {
            let sctx = ctx.sub("shared_secret");
            let bytes = json::decode_b64url(&secret.base64url)
                .filter(|b| b.len() >= 32)
                .ok_or_else(|| sctx.sub("base64url").err(PolicyErrorKind::WeakSecret))?;
            let key = VerifyingKey::hmac(*alg, bytes, secret.kid.clone())
                .ok_or_else(|| sctx.err(PolicyErrorKind::HmacMismatch))?;
            inline_keys.push(key);
        }
        _ => return Err(ctx.sub("shared_secret").err(PolicyErrorKind::HmacMismatch)),
    }
    if let Some(jwks) = &ri.jwks {
        let jctx = ctx.sub("jwks");
        let text = serde_json::to_vec(jwks)
            .map_err(|e| jctx.err(PolicyErrorKind::InvalidJwks(e.to_string())))?;
        let set = KeySet::from_jwks(&text, &algorithms)
            .map_err(|e| jctx.err(PolicyErrorKind::InvalidJwks(e.to_string())))?;
        if set.is_empty() {
            let why = set.skipped().first().map_or_else(
                || "no keys".to_owned(),
                |s| format!("no usable key ({})", s.reason),
            );
            return Err(jctx.err(PolicyErrorKind::InvalidJwks(why)));
        }
        inline_keys = inline_keys.merged(&set);
    }
    let jwks = match &ri.jwks_uri {
        None => None,
        Some(u) => Some(upstream(
            &ctx.sub("jwks_uri"),
            &raw::RawUpstreamParts {
                upstream: &u.upstream,
                path: &u.path,
                authority: u.authority.as_deref(),
                timeout_ms: u.timeout_ms,
            },
        )?),
    };
    if inline_keys.is_empty() && jwks.is_none() {
        return Err(ctx.err(PolicyErrorKind::NoKeySource));
    }
    let leeway = range(&ctx.sub("leeway_s"), ri.leeway_s, 0, 300)?;
    let max_age = match ri.max_token_age_s {
        None => None,
        Some(v) => Some(range(&ctx.sub("max_token_age_s"), v, 1, 31_536_000)?),
    };
    let refresh = range(&ctx.sub("jwks_refresh_s"), ri.jwks_refresh_s, 10, 86_400)?;
    let cooldown = range(&ctx.sub("jwks_cooldown_s"), ri.jwks_cooldown_s, 1, 3600)?;
    non_empty(&ctx.sub("required_typ"), &ri.required_typ)?;
    Ok(Issuer {
        issuer: ri.issuer.clone(),
        algorithms,
        rules: ClaimRules {
            audiences: ri.audiences.clone(),
            leeway_s: leeway,
            max_token_age_s: max_age,
        },
        inline_keys,
        jwks,
        jwks_refresh: Duration::from_secs(refresh),
        jwks_cooldown: Duration::from_secs(cooldown),
        required_typ: (!ri.insecure_skip_typ_check).then(|| ri.required_typ.clone()),
    })
}

fn compile_route(
    i: usize,
    rr: &raw::RawRoute,
    case: PathCase,
    enforce: bool,
) -> Result<Route, PolicyError> {
    let ctx = Ctx {
        field: format!("routes[{i}]"),
        route: Some(rr.name.clone()),
    };
    non_empty(&ctx.sub("name"), &rr.name)?;
    let methods = match &rr.methods {
        None => None,
        Some(list) => {
            if list.is_empty() {
                return Err(ctx.sub("methods").err(PolicyErrorKind::Empty));
            }
            let mut out = Vec::with_capacity(list.len());
            for (j, m) in list.iter().enumerate() {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(ctx
                        .sub(&format!("methods[{j}]"))
                        .err(PolicyErrorKind::InvalidMethod(m.clone())));
                }
                if !out.contains(m) {
                    out.push(m.clone());
                }
            }
            Some(out)
        }
    };
    let fold = |s: &str| match case {
        PathCase::Sensitive => s.to_owned(),
        PathCase::Insensitive => s.to_ascii_lowercase(),
    };
    let path = match &rr.path {
        raw::RawPath::Exact(p) => {
            check_path(&ctx.sub("path.exact"), p)?;
            PathMatch::Exact(fold(p))
        }
        raw::RawPath::Prefix(p) => {
            check_path(&ctx.sub("path.prefix"), p)?;
            PathMatch::Prefix(fold(p))
        }
        raw::RawPath::Pattern(p) => {
            let pctx = ctx.sub("path.pattern");
            check_path(&pctx, p)?;
            PathMatch::pattern(&fold(p)).ok_or_else(|| pctx.err(PolicyErrorKind::InvalidPattern))?
        }
    };
    let access = if rr.public {
        if rr.scopes.is_some() || rr.token_kinds.is_some() || rr.require_dpop {
            return Err(ctx
                .sub("public")
                .err(PolicyErrorKind::PublicWithRequirements));
        }
        Access::Public
    } else {
        let scopes = match &rr.scopes {
            None => ScopeRequirement::AllOf(ScopeSet::new()),
            Some(raw::RawScopes::AllOf(list)) => {
                ScopeRequirement::AllOf(scope_set(&ctx.sub("scopes.all_of"), list)?)
            }
            Some(raw::RawScopes::AnyOf(alternatives)) => {
                if alternatives.is_empty() {
                    return Err(ctx.sub("scopes.any_of").err(PolicyErrorKind::Empty));
                }
                let mut sets = Vec::with_capacity(alternatives.len());
                for (j, alt) in alternatives.iter().enumerate() {
                    let actx = ctx.sub(&format!("scopes.any_of[{j}]"));
                    if alt.is_empty() {
                        return Err(actx.err(PolicyErrorKind::Empty));
                    }
                    sets.push(scope_set(&actx, alt)?);
                }
                ScopeRequirement::AnyOf(sets)
            }
        };
        let kinds = match &rr.token_kinds {
            None => TokenKind::ALL.to_vec(),
            Some(list) if list.is_empty() => {
                return Err(ctx.sub("token_kinds").err(PolicyErrorKind::Empty));
            }
            Some(list) => list.clone(),
        };
        Access::Protected { scopes, kinds }
    };
    Ok(Route {
        name: rr.name.clone(),
        methods,
        path,
        access,
        enforce: rr.enforce.unwrap_or(enforce),
        require_dpop: rr.require_dpop,
    })
}

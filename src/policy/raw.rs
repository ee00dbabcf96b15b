//! The policy file as written: serde types, strict (`deny_unknown_fields`), with
//! the documented defaults. [`super::Policy::compile`] turns them into a `Policy`.

use serde::Deserialize;

use crate::principal::TokenKind;

/// The whole policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub version: u32,
    #[serde(default = "default_realm")]
    pub realm: String,
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub introspection: Option<RawIntrospection>,
    #[serde(default)]
    pub revocation_feed: Option<RawFeed>,
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub default: DefaultAction,
    #[serde(default)]
    pub legacy: RawLegacy,
    #[serde(default)]
    pub identity_headers: RawHeaders,
    #[serde(default = "RawCache::jwt_default")]
    pub jwt_cache: RawCache,
    #[serde(default)]
    pub failure_mode: FailureMode,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default = "yes")]
    pub error_description: bool,
    #[serde(default)]
    pub path_case: PathCase,
    #[serde(default)]
    pub odata: Option<RawOData>,
    #[serde(default = "yes")]
    pub enforce: bool,
    #[serde(default)]
    pub protected_resource: Option<RawProtectedResource>,
    #[serde(default)]
    pub dpop: RawDpop,
}

/// RFC 9449 proofs at the edge.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDpop {
    pub algorithms: Vec<String>,
    pub max_age_s: u64,
    pub leeway_s: u64,
    pub replay_cache_entries: u64,
    pub nonces: bool,
    pub nonce_period_s: u64,
}

impl Default for RawDpop {
    fn default() -> Self {
        Self {
            algorithms: ["ES256", "EdDSA", "RS256", "PS256"]
                .map(String::from)
                .to_vec(),
            max_age_s: 300,
            leeway_s: 60,
            replay_cache_entries: 100_000,
            nonces: false,
            nonce_period_s: 300,
        }
    }
}

/// RFC 9728 protected-resource metadata.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProtectedResource {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Option<Vec<String>>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default)]
    pub resource_documentation: Option<String>,
    #[serde(default = "default_metadata_max_age")]
    pub max_age_s: u64,
}

fn default_metadata_max_age() -> u64 {
    3600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOData {
    pub service_root: String,
    #[serde(default)]
    pub navigation: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_batch_bytes")]
    pub max_batch_bytes: u64,
}

fn default_batch_bytes() -> u64 {
    1 << 20
}

fn default_realm() -> String {
    "erpgate".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub issuer: String,
    pub audiences: Vec<String>,
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_uri: Option<RawUpstream>,
    #[serde(default = "default_refresh")]
    pub jwks_refresh_s: u64,
    #[serde(default = "default_cooldown")]
    pub jwks_cooldown_s: u64,
    #[serde(default)]
    pub shared_secret: Option<RawSecret>,
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    #[serde(default)]
    pub max_token_age_s: Option<u64>,
    #[serde(default = "default_typ")]
    pub required_typ: String,
    #[serde(default)]
    pub insecure_skip_typ_check: bool,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}
fn default_refresh() -> u64 {
    300
}
fn default_cooldown() -> u64 {
    30
}
fn default_leeway() -> u64 {
    60
}
fn default_typ() -> String {
    "at+jwt".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub upstream: String,
    pub path: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    2000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub base64url: String,
    #[serde(default)]
    pub kid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    pub upstream: String,
    pub path: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_introspection_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_hint")]
    pub token_type_hint: String,
    #[serde(default = "RawCache::introspection_default")]
    pub cache: RawCache,
}

fn default_introspection_timeout() -> u64 {
    1500
}
fn default_hint() -> String {
    "access_token".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    pub upstream: String,
    pub path: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    #[serde(default = "default_feed_timeout")]
    pub timeout_ms: u64,
}

fn default_poll() -> u64 {
    500
}
fn default_feed_timeout() -> u64 {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    #[serde(default = "default_entries")]
    pub max_entries: usize,
    #[serde(default)]
    pub max_ttl_s: Option<u64>,
    #[serde(default = "default_negative")]
    pub negative_ttl_s: u64,
    #[serde(default)]
    pub max_stale_s: u64,
}

fn default_entries() -> usize {
    10_000
}
fn default_negative() -> u64 {
    10
}

impl RawCache {
    fn jwt_default() -> Self {
        Self {
            max_entries: default_entries(),
            max_ttl_s: Some(300),
            negative_ttl_s: default_negative(),
            max_stale_s: 0,
        }
    }
    fn introspection_default() -> Self {
        Self {
            max_entries: default_entries(),
            max_ttl_s: Some(60),
            negative_ttl_s: default_negative(),
            max_stale_s: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    pub path: RawPath,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub scopes: Option<RawScopes>,
    #[serde(default)]
    pub token_kinds: Option<Vec<TokenKind>>,
    #[serde(default)]
    pub enforce: Option<bool>,
    #[serde(default)]
    pub require_dpop: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawPath {
    Exact(String),
    Prefix(String),
    Pattern(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawScopes {
    AllOf(Vec<String>),
    AnyOf(Vec<Vec<String>>),
}

/// What happens to a request that no route matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    /// 403, no challenge.
    #[default]
    Deny,
    /// Any valid credential of any kind, no scope required.
    Authenticated,
}

/// What happens to a legacy credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyMode {
    /// 401 `invalid_token`.
    #[default]
    Reject,
    /// Forward to the upstream with identity headers stripped; the upstream decides.
    PassThrough,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLegacy {
    #[serde(default)]
    pub basic: LegacyMode,
    #[serde(default)]
    pub erp_session: LegacyMode,
}

/// What happens when introspection or the JWKS is unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Answer 503 while the dependency is unreachable (the default).
    #[default]
    Closed,
    /// Use a cached introspection result past its TTL (within `max_stale_s` and never
    /// past the token's `exp`); otherwise 503.
    ServeStale,
}

/// Whether route paths compare case-sensitively.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathCase {
    /// Paths compare byte for byte (the default).
    #[default]
    Sensitive,
    /// ASCII case-insensitive, for upstreams that treat paths so (OData entity sets).
    Insensitive,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    #[serde(default = "h_subject")]
    pub subject: Option<String>,
    #[serde(default = "h_user_id")]
    pub user_id: Option<String>,
    #[serde(default = "h_client_id")]
    pub client_id: Option<String>,
    #[serde(default = "h_db")]
    pub db: Option<String>,
    #[serde(default = "h_scopes")]
    pub scopes: Option<String>,
    #[serde(default = "h_kind")]
    pub token_kind: Option<String>,
    #[serde(default = "h_sid")]
    pub session_id: Option<String>,
    #[serde(default = "h_admin")]
    pub is_admin: Option<String>,
    #[serde(default = "h_user_type")]
    pub user_type: Option<String>,
    #[serde(default)]
    pub also_strip: Vec<String>,
}

fn h_subject() -> Option<String> {
    Some("x-erp-subject".into())
}
fn h_user_id() -> Option<String> {
    Some("x-erp-user-id".into())
}
fn h_client_id() -> Option<String> {
    Some("x-erp-client-id".into())
}
fn h_db() -> Option<String> {
    Some("x-erp-db".into())
}
fn h_scopes() -> Option<String> {
    Some("x-erp-scopes".into())
}
fn h_kind() -> Option<String> {
    Some("x-erp-token-kind".into())
}
fn h_sid() -> Option<String> {
    Some("x-erp-session-id".into())
}
fn h_admin() -> Option<String> {
    Some("x-erp-is-admin".into())
}
fn h_user_type() -> Option<String> {
    Some("x-erp-user-type".into())
}

impl Default for RawHeaders {
    fn default() -> Self {
        Self {
            subject: h_subject(),
            user_id: h_user_id(),
            client_id: h_client_id(),
            db: h_db(),
            scopes: h_scopes(),
            token_kind: h_kind(),
            session_id: h_sid(),
            is_admin: h_admin(),
            user_type: h_user_type(),
            also_strip: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default = "default_token_bytes")]
    pub max_token_bytes: usize,
    #[serde(default = "default_depth")]
    pub max_json_depth: usize,
    #[serde(default = "default_header_bytes")]
    pub max_header_bytes: usize,
}

fn default_header_bytes() -> usize {
    1024
}

fn default_token_bytes() -> usize {
    8192
}
fn default_depth() -> usize {
    8
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_token_bytes: default_token_bytes(),
            max_json_depth: default_depth(),
            max_header_bytes: default_header_bytes(),
        }
    }
}

/// The shared shape of an upstream reference, borrowed for validation.
pub struct RawUpstreamParts<'a> {
    pub upstream: &'a str,
    pub path: &'a str,
    pub authority: Option<&'a str>,
    pub timeout_ms: u64,
}

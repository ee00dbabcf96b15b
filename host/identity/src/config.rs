//! The host's TOML configuration. Every field is documented in
//! `host/CONFIG.md`; unknown fields are refused, and each error names the field.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use erpgate_store::records::{ClientType, ReferenceTokenPolicy, SECURITY_SCOPE};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listening, URLs, storage, logs.
    #[serde(default)]
    pub server: ServerConfig,
    /// The emulated ERP.net instance.
    #[serde(default)]
    pub instance: InstanceConfig,
    /// Trusted applications to create if absent.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// Users to create if absent.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Callers allowed to introspect and read the revocation feed besides
    /// confidential trusted apps (ERP.net's API resources).
    #[serde(default)]
    pub api_resources: Vec<ApiResourceConfig>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The operator's listener: the admin API (`/admin/…`) and `/metrics`,
    /// never served on `listen`. Loopback by default.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// The URL clients use to reach the host; the issuer is `{public_url}/id`.
    /// Default: `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Where the SQLite database lives.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`)
    /// shared by several host replicas; without it, SQLite in `data_dir`.
    #[serde(default)]
    pub database: Option<String>,
    /// `text` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the
    /// client: the failed-password limits count the client, not the proxy.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Argon2 password verifications run at once at most (each takes 19 MiB);
    /// further checks wait their turn.
    #[serde(default = "default_password_checks")]
    pub concurrent_password_checks: usize,
}

fn default_password_checks() -> usize {
    2
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8700))
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8701))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("erpgate-data")
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            public_url: None,
            data_dir: default_data_dir(),
            database: None,
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            concurrent_password_checks: default_password_checks(),
        }
    }
}

/// `[instance]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// The database name: the `db` / `client_db` claim.
    #[serde(default = "default_db")]
    pub db: String,
    /// Access-token lifetime in seconds (ERP.net: 3600).
    #[serde(default = "default_lifetime")]
    pub access_token_lifetime_s: u64,
    /// Longest lifetime a reference token may be given, in days.
    #[serde(default = "default_reference_days")]
    pub reference_token_max_days: u64,
    /// Audiences added to tokens that carry an API scope (`read`, `update`, …).
    #[serde(default = "default_audiences")]
    pub api_audiences: Vec<String>,
    /// Accept the legacy `DomainApi` scope in requests (the official .NET client sends it).
    #[serde(default = "yes")]
    pub accept_legacy_domainapi_scope: bool,
    /// License slots of the emulated ERP API: one per open API session.
    #[serde(default = "default_license_slots")]
    pub license_slots: usize,
    /// Logins always guaranteed a slot (ERP.net's reserved seats).
    #[serde(default)]
    pub reserved_accounts: Vec<String>,
    /// How long an identity session (the SSO cookie, and the grants and
    /// tokens that name its `sid`) lives after its last sign-in, in seconds.
    #[serde(default = "default_session_lifetime")]
    pub session_lifetime_s: u64,
    /// How long after a rotation the previous refresh token may be presented
    /// again, by the same client, while its successor is still unused (a
    /// client retrying after a lost response); 0 turns it off. Past it, or
    /// once the successor was used, a replay revokes the whole grant.
    #[serde(default = "default_refresh_reuse")]
    pub refresh_reuse_interval_s: u64,
    /// Whether DPoP proofs at the token endpoint must carry a server nonce
    /// (RFC 9449 §8): a request without the current one gets
    /// `use_dpop_nonce` and the nonce in `DPoP-Nonce`.
    #[serde(default)]
    pub dpop_nonces: bool,
}

fn default_refresh_reuse() -> u64 {
    30
}

fn default_session_lifetime() -> u64 {
    30 * 86_400
}

fn default_license_slots() -> usize {
    25
}

fn default_db() -> String {
    "demo".into()
}
fn default_lifetime() -> u64 {
    3600
}
fn default_reference_days() -> u64 {
    730
}
fn default_audiences() -> Vec<String> {
    ["DomainAPI", "TableAPI", "OLAP", "AppServer"]
        .map(String::from)
        .to_vec()
}
fn yes() -> bool {
    true
}

impl Default for InstanceConfig {
    fn default() -> Self {
        Self {
            db: default_db(),
            access_token_lifetime_s: default_lifetime(),
            reference_token_max_days: default_reference_days(),
            api_audiences: default_audiences(),
            accept_legacy_domainapi_scope: true,
            license_slots: default_license_slots(),
            reserved_accounts: Vec::new(),
            session_lifetime_s: default_session_lifetime(),
            refresh_reuse_interval_s: default_refresh_reuse(),
            dpop_nonces: false,
        }
    }
}

/// `[[apps]]`: a trusted application, with ERP.net's field defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// `ApplicationUri`, the `client_id`.
    pub client_id: String,
    /// ERP.net `Name`: shown on the sign-in and consent pages and in the
    /// profile page's token list. Default `(unnamed)`.
    #[serde(default = "unnamed")]
    pub name: String,
    /// `confidential` (default), `public` or `none`.
    #[serde(default = "confidential")]
    pub client_type: ClientType,
    /// The plain secret; only its hash is stored.
    #[serde(default)]
    pub secret: Option<String>,
    /// Or the hash itself: base64(SHA-256(secret)).
    #[serde(default)]
    pub secret_sha256: Option<String>,
    /// `ImpersonateLoginUrl`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `ImpersonateLogoutUrl`.
    #[serde(default)]
    pub logout_uris: Vec<String>,
    /// `ImpersonateAsInternalUserAllowed`.
    #[serde(default)]
    pub internal_users: bool,
    /// `ImpersonateAsCommunityUserAllowed`.
    #[serde(default)]
    pub community_users: bool,
    /// `SystemUserAllowed`.
    #[serde(default)]
    pub system_user_allowed: bool,
    /// `SystemUser` login.
    #[serde(default)]
    pub system_user: Option<String>,
    /// `Scope`, space-separated.
    #[serde(default)]
    pub scope: String,
    /// `none` (default), `authenticated_users` or `administrators_only`.
    #[serde(default = "no_reference_tokens")]
    pub reference_tokens: ReferenceTokenPolicy,
    /// `BasicAuthenticationAllowed`.
    #[serde(default)]
    pub basic_auth: bool,
    /// `IsEnabled`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Refresh tokens for a public client (24 hours). ERP.net issues them to
    /// confidential clients only; default `false`.
    #[serde(default)]
    pub public_refresh_tokens: bool,
    /// One of the instance's own apps: only these may hold `sec`. Default
    /// `false` (external, as ERP.net treats every other app).
    #[serde(default)]
    pub internal: bool,
    /// Every token request must carry a DPoP proof (RFC 9449): the app's
    /// access tokens are always sender-constrained. Default `false`.
    #[serde(default)]
    pub require_dpop: bool,
}

fn unnamed() -> String {
    "(unnamed)".into()
}
fn confidential() -> ClientType {
    ClientType::Confidential
}
fn no_reference_tokens() -> ReferenceTokenPolicy {
    ReferenceTokenPolicy::None
}

/// `[[users]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login the user signs in with, and the `sub` of their tokens.
    /// Required. A user whose login is already stored is left as it is.
    pub login: String,
    /// GUID; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Display name, the `name` claim. Default: the login.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail address, the `email` claim. Default: empty.
    #[serde(default)]
    pub email: Option<String>,
    /// `InternalUser` (default), `ExternalCommunityUser`, …
    #[serde(default = "internal")]
    pub user_type: String,
    /// Whether the user is an administrator: the `is_admin` claim, and the
    /// right to mint SATs and tokens for `administrators_only` apps.
    /// Default `false`.
    #[serde(default)]
    pub is_admin: bool,
    /// The `locale` claim, a language tag such as `bg-BG`. Default `en-US`.
    #[serde(default = "en_us")]
    pub locale: String,
    /// Plain password; hashed with Argon2id before storing.
    #[serde(default)]
    pub password: Option<String>,
}

fn internal() -> String {
    "InternalUser".into()
}
fn en_us() -> String {
    "en-US".into()
}

/// `[[api_resources]]`: an introspection caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiResourceConfig {
    /// The name it authenticates with (HTTP Basic user).
    pub name: String,
    /// The plain secret; only its hash is kept.
    #[serde(default)]
    pub secret: Option<String>,
    /// Or base64(SHA-256(secret)).
    #[serde(default)]
    pub secret_sha256: Option<String>,
}

/// A configuration error, naming the field.
#[derive(Debug, thiserror::Error)]
#[error("config field `{field}`: {message}")]
pub struct ConfigError {
    /// Dotted path to the field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Config {
    /// Parses and validates TOML.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            field: e
                .span()
                .map_or_else(|| "(document)".to_owned(), |s| field_at(text, s.start)),
            message: e.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Validates `server.database` alone (after a command-line override).
    pub fn validate_database(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.server.database
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError {
                field: "server.database".into(),
                message: "must be a postgres:// or postgresql:// URL".into(),
            });
        }
        Ok(())
    }

    /// `server.trusted_proxies` parsed: an address is a block of one.
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, text)| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError {
                        field: format!("server.trusted_proxies[{i}]"),
                        message: "must be an IP address or a CIDR block".into(),
                    })
            })
            .collect()
    }

    /// Validates `server.public_url` alone (after a command-line override).
    pub fn validate_public(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.server.public_url
            && (!(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/'))
        {
            return Err(ConfigError {
                field: "server.public_url".into(),
                message: "must be an http(s) URL without a trailing slash".into(),
            });
        }
        Ok(())
    }

    /// The numbers that must lie in a range, each error naming its field.
    fn validate_ranges(&self) -> Result<(), ConfigError> {
        let ranges = [
            (
                "server.concurrent_password_checks",
                self.server.concurrent_password_checks as u64,
                1,
                64,
            ),
            (
                "instance.access_token_lifetime_s",
                self.instance.access_token_lifetime_s,
                1,
                86_400,
            ),
            (
                "instance.refresh_reuse_interval_s",
                self.instance.refresh_reuse_interval_s,
                0,
                300,
            ),
            (
                "instance.session_lifetime_s",
                self.instance.session_lifetime_s,
                300,
                31_536_000,
            ),
        ];
        for (field, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(ConfigError {
                    field: field.into(),
                    message: format!("must be between {min} and {max}"),
                });
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: String, message: &str| ConfigError {
            field,
            message: message.to_owned(),
        };
        self.validate_public()?;
        self.validate_database()?;
        self.trusted_proxies()?;
        self.validate_ranges()?;
        if self.instance.reference_token_max_days == 0 {
            return Err(err(
                "instance.reference_token_max_days".into(),
                "must be at least 1",
            ));
        }
        if self.instance.license_slots < self.instance.reserved_accounts.len() {
            return Err(err(
                "instance.license_slots".into(),
                "must be at least the number of reserved_accounts",
            ));
        }
        for (i, login) in self.instance.reserved_accounts.iter().enumerate() {
            if !self.users.iter().any(|u| &u.login == login) {
                return Err(err(
                    format!("instance.reserved_accounts[{i}]"),
                    "names no configured user",
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, app) in self.apps.iter().enumerate() {
            let f = |name: &str| format!("apps[{i}].{name}");
            if app.client_id.trim().is_empty() || app.client_id.contains([':', ' ', ',']) {
                return Err(err(
                    f("client_id"),
                    "must be non-empty without ':', ',' or spaces",
                ));
            }
            if !seen.insert(app.client_id.clone()) {
                return Err(err(f("client_id"), "duplicate client_id"));
            }
            if app.secret.is_some() && app.secret_sha256.is_some() {
                return Err(err(f("secret"), "give secret or secret_sha256, not both"));
            }
            let has_secret = app.secret.is_some() || app.secret_sha256.is_some();
            match app.client_type {
                ClientType::Confidential if !has_secret => {
                    return Err(err(f("secret"), "a confidential app needs a secret"));
                }
                ClientType::Public | ClientType::None if has_secret => {
                    return Err(err(f("secret"), "only confidential apps have secrets"));
                }
                _ => {}
            }
            if erpgate::ScopeSet::parse(&app.scope)
                .is_ok_and(|s| s.contains(SECURITY_SCOPE) && !app.internal)
            {
                return Err(err(
                    format!("apps[{i}].scope"),
                    "sec is granted to internal apps only (set internal = true)",
                ));
            }
            if app.public_refresh_tokens && app.client_type != ClientType::Public {
                return Err(err(
                    format!("apps[{i}].public_refresh_tokens"),
                    "applies to public clients only",
                ));
            }
            if erpgate::ScopeSet::parse(&app.scope).is_err() {
                return Err(err(
                    f("scope"),
                    "not a space-separated list of scope tokens",
                ));
            }
            if app.client_type != ClientType::Confidential
                && (app.system_user_allowed || app.system_user.is_some())
            {
                return Err(err(
                    f("system_user"),
                    "only a confidential app has service access (client credentials, SATs)",
                ));
            }
            if app.system_user_allowed && app.system_user.is_none() {
                return Err(err(
                    f("system_user"),
                    "system_user_allowed needs a system_user",
                ));
            }
            for (j, uri) in app.redirect_uris.iter().chain(&app.logout_uris).enumerate() {
                if uri.contains(',') || uri.trim().is_empty() {
                    return Err(err(
                        f(&format!("redirect_uris[{j}]")),
                        "must be non-empty and contain no comma",
                    ));
                }
            }
        }
        let mut logins = std::collections::HashSet::new();
        for (i, user) in self.users.iter().enumerate() {
            if user.login.trim().is_empty() || user.login.chars().any(char::is_control) {
                return Err(err(
                    format!("users[{i}].login"),
                    "must be non-empty without control characters",
                ));
            }
            if !logins.insert(user.login.clone()) {
                return Err(err(format!("users[{i}].login"), "duplicate login"));
            }
        }
        for (i, app) in self.apps.iter().enumerate() {
            if let Some(u) = &app.system_user
                && !logins.contains(u)
            {
                return Err(err(
                    format!("apps[{i}].system_user"),
                    "names no configured user",
                ));
            }
        }
        for (i, r) in self.api_resources.iter().enumerate() {
            if r.secret.is_some() == r.secret_sha256.is_some() {
                return Err(err(
                    format!("api_resources[{i}].secret"),
                    "give exactly one of secret or secret_sha256",
                ));
            }
        }
        Ok(())
    }

    /// The built-in demo instance used when no config file is given.
    pub fn demo() -> Self {
        // PANIC SAFETY: DEMO is a constant checked by the `demo_config_is_valid` test.
        #[allow(clippy::expect_used)]
        Self::parse(DEMO).expect("built-in demo config is valid")
    }

    /// The issuer: `{public_url}/id`.
    pub fn issuer(&self, bound: SocketAddr) -> String {
        format!("{}/id", self.public_url(bound))
    }

    /// The public base URL.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

/// Best effort: the dotted key path of the TOML at `offset`, for error messages.
fn field_at(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text
        .get(line_start..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |i| line_start + i);
    let mut table = String::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut key = String::new();
    for line in text.get(..line_start).unwrap_or("").lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let n = index
                .entry(name.to_owned())
                .and_modify(|n| *n += 1)
                .or_insert(0);
            table = format!("{name}[{n}]");
            key.clear();
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.to_owned();
            key.clear();
        } else if let Some((k, _)) = t.split_once('=') {
            key = k.trim().to_owned();
        }
    }
    if let Some((k, _)) = text
        .get(line_start..line_end)
        .and_then(|l| l.split_once('='))
    {
        key = k.trim().to_owned();
    }
    match (table.is_empty(), key.is_empty()) {
        (true, true) => "(document)".into(),
        (true, false) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// The demo instance: one of each kind of trusted application, named users.
pub const DEMO: &str = include_str!("../demo.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid() {
        let c = Config::demo();
        assert!(c.apps.len() >= 4);
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        assert_eq!(e.field, "server.listen_port", "{e}");
        let e = Config::parse("[[apps]]\nclient_id = \"a\"\nsecret = \"s\"\n[[apps]]\nclient_id = \"b\"\nclient_type = \"weird\"\n").unwrap_err();
        assert_eq!(e.field, "apps[1].client_type", "{e}");
        let e = Config::parse("[[apps]]\nclient_id = \"a\"\n").unwrap_err();
        assert_eq!(e.field, "apps[0].secret", "{e}");
        let e = Config::parse("[instance]\naccess_token_lifetime_s = 0\n").unwrap_err();
        assert_eq!(e.field, "instance.access_token_lifetime_s");
        let e = Config::parse(
            "[[apps]]\nclient_id = \"a\"\nclient_type = \"public\"\nsystem_user = \"ghost\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "apps[0].system_user");
        // Service access is for confidential apps only.
        let e = Config::parse(
            "[[users]]\nlogin = \"svc\"\nuser_type = \"ApplicationUserNoLogin\"\n[[apps]]\nclient_id = \"a\"\nclient_type = \"public\"\nsystem_user_allowed = true\nsystem_user = \"svc\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "apps[0].system_user", "{e}");
        assert!(e.to_string().contains("confidential"), "{e}");
        // `sec` for the instance's own apps only; public refresh tokens for
        // public clients only.
        let e =
            Config::parse("[[apps]]\nclient_id = \"a\"\nsecret = \"s\"\nscope = \"read sec\"\n")
                .unwrap_err();
        assert_eq!(e.field, "apps[0].scope", "{e}");
        assert!(e.to_string().contains("internal"), "{e}");
        assert!(
            Config::parse(
                "[[apps]]\nclient_id = \"a\"\nsecret = \"s\"\nscope = \"read sec\"\ninternal = true\n"
            )
            .is_ok()
        );
        let e = Config::parse(
            "[[apps]]\nclient_id = \"a\"\nsecret = \"s\"\npublic_refresh_tokens = true\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "apps[0].public_refresh_tokens", "{e}");
        let e = Config::parse("[server]\ndatabase = \"mysql://x\"\n").unwrap_err();
        assert_eq!(e.field, "server.database");
        let ok = Config::parse("[server]\ndatabase = \"postgres://u@127.0.0.1/erp\"\n").unwrap();
        assert!(ok.server.database.is_some());
    }
}

//! ERP.net's identity records as the host keeps them: trusted applications
//! (`Systems.Security.TrustedApplications`), users, reference tokens and
//! signing keys.

use erpgate::ScopeSet;
use serde::{Deserialize, Serialize};

/// RFC 6749 client type (`ClientType`: 'C', 'P', 'N').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// Has a secret. ERP.net's default.
    Confidential,
    /// No secret; PKCE.
    Public,
    /// A placeholder registration with no authentication.
    None,
}

impl ClientType {
    /// Storage code, as ERP.net's column holds it.
    pub fn code(self) -> &'static str {
        match self {
            ClientType::Confidential => "C",
            ClientType::Public => "P",
            ClientType::None => "N",
        }
    }

    /// Parses a storage code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "C" => Some(ClientType::Confidential),
            "P" => Some(ClientType::Public),
            "N" => Some(ClientType::None),
            _ => None,
        }
    }
}

/// Who may mint reference tokens for an app (`ReferenceTokens` / `AccessTokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceTokenPolicy {
    /// Nobody ('NON'). ERP.net's default.
    None,
    /// Any authenticated user may mint PATs ('USR').
    AuthenticatedUsers,
    /// Only administrators ('ADM').
    AdministratorsOnly,
}

impl ReferenceTokenPolicy {
    /// Storage code, as ERP.net's column holds it: `NON`, `USR` or `ADM`.
    pub fn code(self) -> &'static str {
        match self {
            ReferenceTokenPolicy::None => "NON",
            ReferenceTokenPolicy::AuthenticatedUsers => "USR",
            ReferenceTokenPolicy::AdministratorsOnly => "ADM",
        }
    }

    /// Parses a storage code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "NON" => Some(ReferenceTokenPolicy::None),
            "USR" => Some(ReferenceTokenPolicy::AuthenticatedUsers),
            "ADM" => Some(ReferenceTokenPolicy::AdministratorsOnly),
            _ => None,
        }
    }
}

/// A trusted application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedApp {
    /// `ApplicationUri`, the `client_id`.
    pub client_id: String,
    /// `Name`: shown on the sign-in, consent and profile pages.
    pub name: String,
    /// `ClientType`: whether the app authenticates with its secret
    /// (confidential), with PKCE alone (public), or never (none: a placeholder).
    pub client_type: ClientType,
    /// `ApplicationSecretHash`: base64(SHA-256(secret)).
    pub secret_hash: Option<String>,
    /// `ImpersonateLoginUrl`: allowed redirect URIs.
    pub redirect_uris: Vec<String>,
    /// `ImpersonateLogoutUrl`: allowed post-logout redirect URIs.
    pub logout_uris: Vec<String>,
    /// `ImpersonateAsInternalUserAllowed`.
    pub internal_users_allowed: bool,
    /// `ImpersonateAsCommunityUserAllowed`.
    pub community_users_allowed: bool,
    /// `SystemUserAllowed`.
    pub system_user_allowed: bool,
    /// `SystemUser`: the login the app acts as in client credentials and SATs.
    pub system_user: Option<String>,
    /// `Scope`: the scopes the app may receive.
    pub scope: ScopeSet,
    /// `ReferenceTokens`.
    pub reference_tokens: ReferenceTokenPolicy,
    /// `BasicAuthenticationAllowed`.
    pub basic_auth_allowed: bool,
    /// `IsEnabled`: the kill switch.
    pub enabled: bool,
    /// Whether a public client gets refresh tokens (24 hours). ERP.net
    /// issues them to interactive confidential clients only; this switch is
    /// the emulator's documented departure for single-page apps.
    pub public_refresh_tokens: bool,
    /// Whether the app is one of the instance's own (internal) apps: only
    /// those may be granted `sec`. ERP.net treats every other app as
    /// external.
    pub internal: bool,
    /// Whether every token request of the app must carry a DPoP proof
    /// (RFC 9449): its access tokens are then always sender-constrained.
    pub require_dpop: bool,
    /// `CreationTimeUtc`, Unix seconds.
    pub created_at: u64,
}

/// The scope of the security namespace (`Systems_Security_*`).
pub const SECURITY_SCOPE: &str = "sec";

impl TrustedApp {
    /// The scopes the app may be granted: its `Scope`, without `sec` unless
    /// the app is internal (ERP.net never grants `sec` to external apps).
    pub fn grantable_scopes(&self) -> ScopeSet {
        let mut scopes = self.scope.clone();
        if !self.internal {
            scopes.remove(SECURITY_SCOPE);
        }
        scopes
    }

    /// Whether the app gets refresh tokens: ERP.net issues them to
    /// interactive confidential clients; a public one only with
    /// `public_refresh_tokens`.
    pub fn refresh_tokens_allowed(&self) -> bool {
        match self.client_type {
            ClientType::Confidential => true,
            ClientType::Public => self.public_refresh_tokens,
            ClientType::None => false,
        }
    }

    /// A record with ERP.net's defaults: Confidential, enabled, everything else off.
    pub fn new(client_id: &str, name: &str, created_at: u64) -> Self {
        Self {
            client_id: client_id.to_owned(),
            name: name.to_owned(),
            client_type: ClientType::Confidential,
            secret_hash: None,
            redirect_uris: Vec::new(),
            logout_uris: Vec::new(),
            internal_users_allowed: false,
            community_users_allowed: false,
            system_user_allowed: false,
            system_user: None,
            scope: ScopeSet::new(),
            reference_tokens: ReferenceTokenPolicy::None,
            basic_auth_allowed: false,
            enabled: true,
            public_refresh_tokens: false,
            internal: false,
            require_dpop: false,
            created_at,
        }
    }

    /// The SystemUser, when service access is allowed and one is set. The
    /// one rule for service access, asked by client credentials, SAT minting
    /// and SAT introspection: only a confidential app, which proves who it
    /// is with its secret, acts as a SystemUser (RFC 6749 4.4).
    pub fn acting_system_user(&self) -> Option<&str> {
        self.system_user
            .as_deref()
            .filter(|_| self.system_user_allowed && self.client_type == ClientType::Confidential)
    }
}

/// An ERP user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `Sec_Users.Login`, the `sub` claim.
    pub login: String,
    /// The user's GUID, the `id` claim.
    pub id: String,
    /// Display name, the `name` claim (the login when the configuration gives
    /// none).
    pub name: String,
    /// E-mail address, the `email` claim; may be empty.
    pub email: String,
    /// `InternalUser`, `ExternalCommunityUser`, …
    pub user_type: String,
    /// Whether the user is an administrator: the `is_admin` claim, and the
    /// right to mint SATs and tokens for `AdministratorsOnly` apps.
    pub is_admin: bool,
    /// Locale, e.g. `en-US`.
    pub locale: String,
    /// Argon2id PHC string, for users who can sign in.
    pub password_hash: Option<String>,
}

/// The kind of a stored grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantKind {
    /// Personal access token.
    Pat,
    /// Service access token.
    Sat,
}

impl GrantKind {
    /// Storage and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Pat => "pat",
            GrantKind::Sat => "sat",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pat" => Some(GrantKind::Pat),
            "sat" => Some(GrantKind::Sat),
            _ => None,
        }
    }
}

/// A reference token as stored: never the token, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceToken {
    /// Public identifier for listing and revoking (not secret).
    pub id: String,
    /// Lowercase hex SHA-256 of the token.
    #[serde(skip)]
    pub hash: String,
    /// PAT or SAT.
    pub kind: GrantKind,
    /// The trusted application.
    pub client_id: String,
    /// The login the token acts as (the user for a PAT, the SystemUser for a SAT).
    pub subject: String,
    /// Scopes the token grants: a subset of the app's `Scope` without identity
    /// scopes (all of the app's API scopes when none were asked for).
    pub scopes: ScopeSet,
    /// What it is for.
    pub description: String,
    /// Who minted it.
    pub creator: String,
    /// When it was minted, Unix seconds; introspection reports it as `iat`.
    pub created_at: u64,
    /// When it stops being active, Unix seconds: chosen at minting, at most
    /// the instance's `reference_token_max_days` ahead; introspection reports
    /// it as `exp`.
    pub expires_at: u64,
    /// Unix seconds, when it was last introspected.
    pub last_used_at: Option<u64>,
    /// Unix seconds, when it was revoked.
    pub revoked_at: Option<u64>,
    /// The RFC 7638 thumbprint of the DPoP key the token is bound to:
    /// introspection reports it as `cnf.jkt`, and the token is then only
    /// good with that key's proofs.
    pub jkt: Option<String>,
}

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// 32 uppercase hex characters.
    pub kid: String,
    /// PKCS#8 PEM of the RSA private key.
    pub private_pem: String,
    /// When it starts signing, Unix seconds. A rotated key is dated ahead:
    /// published from the moment it is stored, signing from then.
    pub created_at: u64,
    /// When the key stops being published; `None` while it is the newest.
    pub retire_at: Option<u64>,
}

/// One revocation-feed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    /// Position in the feed, assigned by the store and strictly increasing;
    /// the feed's cursor is the last `seq` a page carried.
    pub seq: u64,
    /// What was revoked, as the feed page sends it.
    pub event: erpgate::revocation::RevocationEvent,
}

/// An Identity Server session: what the SSO cookie points at. `sid` is the
/// key ERP.net's APIs use for the ERP session and its license slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySession {
    /// 32 uppercase hex characters.
    pub sid: String,
    /// The signed-in user.
    pub login: String,
    /// When the user last entered a password, Unix seconds.
    pub auth_time: u64,
    /// When the session was created at sign-in, Unix seconds.
    pub created_at: u64,
    /// When the session was ended (sign-out), Unix seconds.
    pub ended_at: Option<u64>,
}

/// What an authorization code or a refresh token carries over to the tokens
/// issued from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantBasis {
    /// Groups every token issued from one authorization (code, refresh
    /// family, access tokens): replay revokes them together.
    pub grant_id: String,
    /// The trusted application.
    pub client_id: String,
    /// Login of the user who authorized the app.
    pub login: String,
    /// The identity session.
    pub sid: String,
    /// Scopes granted at authorization, carried into every token of the
    /// grant: those requested, or only the identity scopes for users other
    /// than `InternalUser`.
    pub scopes: ScopeSet,
    /// When the user signed in, Unix seconds.
    pub auth_time: u64,
}

/// An authorization code as stored: its SHA-256, never the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    /// Lowercase hex SHA-256 of the code.
    pub hash: String,
    /// What it grants.
    pub basis: GrantBasis,
    /// The exact `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    /// The S256 PKCE challenge, when one was sent.
    pub code_challenge: Option<String>,
    /// The OIDC `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The request's `state`, for the ID token's `s_hash`.
    pub state: Option<String>,
    /// When the code was issued, Unix seconds.
    pub created_at: u64,
    /// When the code can no longer be redeemed, Unix seconds (the identity
    /// host gives codes two minutes).
    pub expires_at: u64,
}

/// A refresh token as stored: its SHA-256, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Lowercase hex SHA-256 of the token.
    pub hash: String,
    /// What it grants.
    pub basis: GrantBasis,
    /// When this token was issued (by the code exchange or a rotation), Unix
    /// seconds.
    pub created_at: u64,
    /// When the grant's refresh tokens stop working, Unix seconds: set by the
    /// first one (30 days for confidential apps, 24 hours for public ones) and
    /// kept by every rotation.
    pub expires_at: u64,
    /// RFC 7638 thumbprint of the DPoP key a public client's refresh token
    /// is bound to (RFC 9449 §5): every refresh must prove that key. Kept
    /// by every rotation.
    pub jkt: Option<String>,
}

/// How redeeming a single-use credential (code, refresh token) went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption<T> {
    /// First use: this call consumed it.
    Fresh(T),
    /// It was already used (or revoked): a replay.
    Replayed(T),
    /// No such credential.
    Unknown,
}

/// A user's remembered consent for an app (ERP.net's
/// TrustedApplicationAuthorizations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Login of the user who consented.
    pub login: String,
    /// The trusted application.
    pub client_id: String,
    /// The scopes consented to.
    pub scopes: ScopeSet,
    /// When the user last consented, Unix seconds; a new consent replaces the
    /// old one.
    pub granted_at: u64,
}

/// Sliding idle timeout of an ERP session.
pub const IDLE_TIMEOUT_S: u64 = 20 * 60;
/// Absolute lifetime of a service identity's ERP session.
pub const SERVICE_LIFETIME_S: u64 = 60 * 60;

/// What opened an ERP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A user access token (keyed by `sid`).
    User,
    /// A client-credentials token (keyed by `jti`).
    Service,
    /// A personal access token (keyed by the token's hash).
    Pat,
    /// A service access token (keyed by the token's hash).
    Sat,
    /// HTTP Basic.
    Basic,
    /// ErpLogin (`ErpSession`).
    ErpLogin,
}

impl Origin {
    /// Service identities also have an absolute lifetime.
    fn is_service(self) -> bool {
        matches!(self, Origin::Service | Origin::Sat)
    }

    /// The stored name.
    pub fn code(self) -> &'static str {
        match self {
            Origin::User => "user",
            Origin::Service => "service",
            Origin::Pat => "pat",
            Origin::Sat => "sat",
            Origin::Basic => "basic",
            Origin::ErpLogin => "erp_login",
        }
    }

    /// From the stored name.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Origin::User,
            Origin::Service,
            Origin::Pat,
            Origin::Sat,
            Origin::Basic,
            Origin::ErpLogin,
        ]
        .into_iter()
        .find(|o| o.code() == code)
    }
}

/// One open ERP session: it holds a license slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSession {
    /// Its id: the `ErpSession` value for ErpLogin, an opaque id otherwise.
    pub id: String,
    /// The identity it belongs to (`sid:…`, `jti:…`, `basic:…`, `erp:…`).
    #[serde(skip)]
    pub key: String,
    /// The ERP login it runs as.
    pub login: String,
    /// The trusted application, when known.
    pub client_id: Option<String>,
    /// What opened it.
    pub origin: Origin,
    /// When the session opened and took its license slot, Unix seconds.
    pub opened_at: u64,
    /// Unix seconds of the last call.
    pub last_seen: u64,
    /// When it closes regardless of use (service sessions), Unix seconds.
    pub closes_at: Option<u64>,
    /// Whether it holds a reserved account's guaranteed slot.
    pub reserved: bool,
}

impl ApiSession {
    /// A session of `login` under `key` opening now with a fresh id.
    pub fn open(
        key: &str,
        login: &str,
        client_id: Option<String>,
        origin: Origin,
        now: u64,
    ) -> Self {
        Self {
            id: crate::secrets::random_hex(16),
            key: key.to_owned(),
            login: login.to_owned(),
            client_id,
            origin,
            opened_at: now,
            last_seen: now,
            closes_at: origin
                .is_service()
                .then(|| now.saturating_add(SERVICE_LIFETIME_S)),
            reserved: false,
        }
    }

    /// When it closes unless touched again: idle timeout or absolute end.
    pub fn expires_at(&self) -> u64 {
        let idle = self.last_seen.saturating_add(IDLE_TIMEOUT_S);
        self.closes_at.map_or(idle, |c| idle.min(c))
    }

    /// Touched at `now`.
    pub fn touch(&mut self, now: u64) {
        self.last_seen = self.last_seen.max(now);
    }
}

/// The instance's license: how many sessions may be open at once, and the
/// accounts always guaranteed one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// License slots in all.
    pub slots: usize,
    /// Accounts each guaranteed one slot.
    pub reserved_accounts: Vec<String>,
}

impl License {
    /// Whether `candidate` may open next to the `live` sessions, and whether
    /// it takes its account's guaranteed slot: `None` when every shared slot
    /// is taken. The stores call this under their license lock, so the count
    /// holds across processes.
    pub fn admit(&self, live: &[ApiSession], candidate: &ApiSession) -> Option<bool> {
        let is_reserved = self.reserved_accounts.contains(&candidate.login);
        let guaranteed = is_reserved
            && !live
                .iter()
                .any(|s| s.reserved && s.login == candidate.login);
        if guaranteed {
            return Some(true);
        }
        let shared_used = live.iter().filter(|s| !s.reserved).count();
        let shared = self.slots.saturating_sub(self.reserved_accounts.len());
        (shared_used < shared).then_some(false)
    }
}

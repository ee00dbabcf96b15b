//! Persistence behind one trait. SQLite (WAL, in the data directory) is the
//! default; PostgreSQL lets several host replicas share one state; an
//! in-memory store serves unit tests. Every method that changes state is
//! atomic, also between processes: a revocation and its feed event commit
//! together, a code is redeemed once, a license slot is taken once.

mod memory;
mod postgres;
pub mod records;
mod rows;
pub mod secrets;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use erpgate::revocation::{RevocationEvent, RevocationKind};

use crate::records::{
    ApiSession, AuthCode, Consent, FeedRow, IdentitySession, License, Redemption, ReferenceToken,
    RefreshToken, SigningKeyRecord, TrustedApp, User,
};

/// A storage failure. Details go to logs, never to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, lock timeout).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A record with that key already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A stored value could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A reference token with the records it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenContext {
    /// The stored record (the token's hash, never its value).
    pub token: ReferenceToken,
    /// Its trusted application, if it still exists.
    pub app: Option<TrustedApp>,
    /// The user it acts as, if it still exists.
    pub user: Option<User>,
}

/// The host's persistence.
#[async_trait]
pub trait Store: Send + Sync {
    /// One trusted application.
    async fn app(&self, client_id: &str) -> StoreResult<Option<TrustedApp>>;
    /// Every trusted application, by `client_id`.
    async fn apps(&self) -> StoreResult<Vec<TrustedApp>>;
    /// Adds an application; `Conflict` if the `client_id` exists.
    async fn insert_app(&self, app: &TrustedApp) -> StoreResult<()>;
    /// Sets `IsEnabled`; false when the app does not exist. Disabling kills
    /// the app's refresh tokens in the same transaction.
    async fn set_app_enabled(&self, client_id: &str, enabled: bool) -> StoreResult<bool>;
    /// Replaces `ApplicationSecretHash`; false when the app does not exist.
    async fn set_app_secret_hash(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool>;
    /// Removes an app (an uninstall); false when it does not exist. In the
    /// same transaction its refresh tokens die, its reference tokens are
    /// revoked (at `now`) and the consents given to it are forgotten, so an
    /// app installed again under the same `client_id` inherits nothing.
    async fn delete_app(&self, client_id: &str, now: u64) -> StoreResult<bool>;
    /// Replaces every field of an existing app but `created_at`; false when
    /// it does not exist. When the app ends up disabled, its refresh tokens
    /// die in the same transaction, as with [`Store::set_app_enabled`].
    async fn update_app(&self, app: &TrustedApp) -> StoreResult<bool>;

    /// One user by login.
    async fn user(&self, login: &str) -> StoreResult<Option<User>>;
    /// Every user, by login.
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Adds a user; `Conflict` if the login exists.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// Replaces a user's name, email, type, administrator flag and locale;
    /// the subject id and the password stay. False when the user does not exist.
    async fn update_user_profile(&self, user: &User) -> StoreResult<bool>;

    /// Every signing key, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Stores the first key if the store has none; false when another process won.
    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool>;
    /// Adds a new signing key; every key still signing is retired at `retire_old_at`.
    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        retire_old_at: u64,
    ) -> StoreResult<()>;

    /// Stores a new reference token (its hash).
    async fn insert_reference_token(&self, token: &ReferenceToken) -> StoreResult<()>;
    /// A reference token by the hex SHA-256 of its value.
    async fn reference_token(&self, hash: &str) -> StoreResult<Option<ReferenceToken>>;
    /// A reference token with its app and acting user, in one read (the
    /// introspection hot path).
    async fn reference_token_context(&self, hash: &str) -> StoreResult<Option<TokenContext>>;
    /// Every reference token, newest first.
    async fn reference_tokens(&self) -> StoreResult<Vec<ReferenceToken>>;
    /// Revokes by hash or public id and appends a feed event in the same
    /// transaction. Returns the token when this call revoked it.
    async fn revoke_reference_token(
        &self,
        hash_or_id: &str,
        now: u64,
    ) -> StoreResult<Option<ReferenceToken>>;
    /// Records last-used times (batched by the caller).
    async fn record_token_use(&self, uses: &[(String, u64)]) -> StoreResult<()>;

    /// Revokes a JWT by `jti` and appends a feed event. False when it already was.
    async fn revoke_jti(&self, jti: &str, expires_at: u64, now: u64) -> StoreResult<bool>;
    /// Whether a `jti` is revoked.
    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool>;

    /// Appends an event to the feed on its own: the `client_id` and `sub`
    /// events that tell edges an app or a user changed.
    async fn publish_revocation(&self, event: &RevocationEvent) -> StoreResult<()>;
    /// Feed rows after `cursor`, oldest first, at most `limit`.
    async fn feed(&self, cursor: u64, limit: usize) -> StoreResult<Vec<FeedRow>>;

    /// Starts an identity session.
    async fn insert_session(&self, session: &IdentitySession) -> StoreResult<()>;
    /// One identity session by `sid`.
    async fn session(&self, sid: &str) -> StoreResult<Option<IdentitySession>>;
    /// Up to `limit` live identity sessions last authenticated before
    /// `auth_before`, oldest first: the ones past their lifetime.
    async fn expired_sessions(&self, auth_before: u64, limit: usize) -> StoreResult<Vec<String>>;
    /// Records a fresh authentication in a live session (`prompt=login` by
    /// its own user): the session, and so its ERP session, is kept, and
    /// `auth_time` moves to `auth_time`. False when it is unknown or ended.
    async fn reauthenticate_session(&self, sid: &str, auth_time: u64) -> StoreResult<bool>;
    /// Ends a session: its refresh tokens die and a `sid` revocation event
    /// (kept until `event_expires_at`) tells the edge, in one transaction.
    /// False when it had already ended or does not exist.
    async fn end_session(&self, sid: &str, now: u64, event_expires_at: u64) -> StoreResult<bool>;

    /// Stores a new authorization code.
    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Consumes a code atomically: exactly one caller gets `Fresh`.
    async fn redeem_auth_code(&self, hash: &str, now: u64) -> StoreResult<Redemption<AuthCode>>;

    /// Stores a new refresh token; false (and nothing stored) when its
    /// grant has been revoked, also by a revocation racing this call.
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<bool>;
    /// A refresh token by the hash of its value, live or dead (RFC 7009
    /// revocation reads it to find its grant and client).
    async fn refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshToken>>;
    /// Rotates a refresh token atomically: the old one is consumed and its
    /// successor (`next_hash`, same grant, same absolute expiry) stored in one
    /// transaction; exactly one caller gets `Fresh` (the old record). A token
    /// already rotated or revoked comes back as `Replayed`, except within
    /// the reuse interval: a token rotated at or after `reuse_since` whose
    /// successor (the token its rotation made) is still live and unused (the
    /// client never got it, say) is rotated again, the unused successor
    /// dying in the same transaction.
    async fn rotate_refresh_token(
        &self,
        hash: &str,
        next_hash: &str,
        now: u64,
        reuse_since: Option<u64>,
    ) -> StoreResult<Redemption<RefreshToken>>;
    /// Records an access token (`jti`) issued under a grant. False when the
    /// grant has been revoked: the `jti` is then revoked at once (with its
    /// feed event).
    async fn record_grant_jti(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> StoreResult<bool>;
    /// Revokes a whole grant: its refresh tokens and the access tokens
    /// recorded under it (as `jti` revocations with feed events), and marks
    /// it revoked so that tokens a concurrent redemption is still issuing
    /// under it die too. Returns how many records it revoked.
    async fn revoke_grant(&self, grant_id: &str, now: u64) -> StoreResult<usize>;
    /// Replaces a user's password hash; in the same transaction every refresh
    /// token of the user dies and every live identity session ends, each
    /// with a `sid` event in the feed until `event_expires_at` (a stolen SSO
    /// cookie does not outlive the reset). False when the user does not exist.
    async fn set_password_hash(
        &self,
        login: &str,
        hash: &str,
        now: u64,
        event_expires_at: u64,
    ) -> StoreResult<bool>;

    /// A user's remembered consent for an app, if not revoked.
    async fn consent(&self, login: &str, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Every remembered consent of a user, by app.
    async fn consents_of(&self, login: &str) -> StoreResult<Vec<Consent>>;
    /// Remembers (or widens) a consent.
    async fn save_consent(&self, consent: &Consent) -> StoreResult<()>;
    /// Revokes a consent; false when there was none. The refresh tokens the
    /// user holds for that app die with it, in the same transaction.
    async fn revoke_consent(&self, login: &str, client_id: &str, now: u64) -> StoreResult<bool>;

    /// The emulated ERP API's records of one entity set: (id, JSON), by id.
    async fn records(&self, entity_set: &str) -> StoreResult<Vec<(String, String)>>;
    /// One record's JSON.
    async fn record(&self, entity_set: &str, id: &str) -> StoreResult<Option<String>>;
    /// Adds a record; `Conflict` when the id exists.
    async fn insert_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<()>;
    /// Replaces a record; false when it does not exist.
    async fn update_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<bool>;
    /// Deletes a record; false when it did not exist.
    async fn delete_record(&self, entity_set: &str, id: &str) -> StoreResult<bool>;

    /// The live ERP session of `candidate.key`, touched; or `candidate`
    /// itself, opened, if `license` admits it next to the live sessions.
    /// `None`: every slot it could take is in use. Atomic across processes.
    async fn enter_api_session(
        &self,
        candidate: &ApiSession,
        license: &License,
        now: u64,
    ) -> StoreResult<Option<ApiSession>>;
    /// The live ERP session with this id (an `ErpSession` value), touched.
    async fn resume_api_session(&self, id: &str, now: u64) -> StoreResult<Option<ApiSession>>;
    /// Closes an ERP session by identity key or by id; its slot is free at
    /// once. False when none was open.
    async fn close_api_session(&self, key_or_id: &str) -> StoreResult<bool>;
    /// The live ERP sessions, oldest first.
    async fn api_sessions(&self, now: u64) -> StoreResult<Vec<ApiSession>>;

    /// The secret stored under `name`; `candidate` becomes it when there is
    /// none yet, so every process sharing the store agrees on one value.
    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String>;
    /// Stores (or replaces) a sign-in in progress, as JSON.
    async fn put_signin(&self, id: &str, json: &str, expires_at: u64) -> StoreResult<()>;
    /// A sign-in in progress that has not expired.
    async fn signin(&self, id: &str, now: u64) -> StoreResult<Option<String>>;
    /// Removes a sign-in in progress and returns it if it had not expired:
    /// of concurrent takers, one gets it.
    async fn take_signin(&self, id: &str, now: u64) -> StoreResult<Option<String>>;
    /// Counts one failed login under `key` and returns the count in the
    /// current window (a window of `window_s` starts at the first failure).
    async fn add_login_failure(&self, key: &str, now: u64, window_s: u64) -> StoreResult<u32>;
    /// Failed logins under `key` in the current window.
    async fn login_failures(&self, key: &str, now: u64) -> StoreResult<u32>;
    /// Clears the failed logins under `key` (a successful login).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;

    /// Deletes up to `batch` expired records of each kind; returns how many.
    async fn purge_expired(&self, now: u64, batch: usize) -> StoreResult<usize>;
}

// SQL shared by the SQLite and PostgreSQL stores. Both speak it; where the
// dialects differ, a placeholder or a small substitution says so.

/// The schema, one migration an entry, in types both engines accept. The
/// SQLite store records how many ran in `PRAGMA user_version`, the
/// PostgreSQL store in `erpgate_migrations`. `{serial}` is the dialect's
/// auto-numbered primary key; `{key_order}` adds the column PostgreSQL
/// orders signing keys by (SQLite has its rowid).
const MIGRATIONS: [&str; 10] = [
    r#"
CREATE TABLE trusted_apps (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    client_type TEXT NOT NULL,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,
    logout_uris TEXT NOT NULL,
    internal_users BOOLEAN NOT NULL,
    community_users BOOLEAN NOT NULL,
    system_user_allowed BOOLEAN NOT NULL,
    system_user TEXT,
    scope TEXT NOT NULL,
    reference_tokens TEXT NOT NULL,
    basic_auth BOOLEAN NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    login TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    user_type TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL,
    locale TEXT NOT NULL,
    password_hash TEXT
);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retire_at BIGINT{key_order}
);
CREATE TABLE reference_tokens (
    hash TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    scopes TEXT NOT NULL,
    description TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX reference_tokens_expiry ON reference_tokens (expires_at);
CREATE TABLE revoked_jti (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_jti_expiry ON revoked_jti (expires_at);
CREATE TABLE revocation_feed (
    seq {serial},
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocation_feed_expiry ON revocation_feed (expires_at);
"#,
    r#"
CREATE TABLE identity_sessions (
    sid TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE TABLE auth_codes (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    login TEXT NOT NULL,
    sid TEXT NOT NULL,
    scopes TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    nonce TEXT,
    state TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);
CREATE TABLE refresh_tokens (
    hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    login TEXT NOT NULL,
    sid TEXT NOT NULL,
    scopes TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    dead_at BIGINT
);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);
CREATE INDEX refresh_tokens_login ON refresh_tokens (login);
CREATE TABLE grant_jtis (
    grant_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, jti)
);
CREATE INDEX grant_jtis_expiry ON grant_jtis (expires_at);
CREATE TABLE consents (
    login TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (login, client_id)
);
"#,
    r#"
CREATE TABLE api_records (
    entity_set TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (entity_set, id)
);
"#,
    r#"
CREATE TABLE api_sessions (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    login TEXT NOT NULL,
    client_id TEXT,
    origin TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    closes_at BIGINT,
    reserved BOOLEAN NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX api_sessions_expiry ON api_sessions (expires_at);
CREATE TABLE host_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE pending_signins (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_signins_expiry ON pending_signins (expires_at);
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_failures_expiry ON login_failures (expires_at);
"#,
    r#"
CREATE TABLE revoked_grants (
    grant_id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_grants_expiry ON revoked_grants (expires_at);
"#,
    r#"
ALTER TABLE trusted_apps ADD COLUMN public_refresh_tokens BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE trusted_apps ADD COLUMN internal BOOLEAN NOT NULL DEFAULT FALSE;
"#,
    r#"
ALTER TABLE refresh_tokens ADD COLUMN parent TEXT;
CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent);
"#,
    r#"
ALTER TABLE revocation_feed ADD COLUMN issued_before BIGINT;
"#,
    r#"
ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT;
ALTER TABLE trusted_apps ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
"#,
    r#"
ALTER TABLE reference_tokens ADD COLUMN jkt TEXT;
"#,
];

/// The migrations in one dialect.
fn migrations(serial: &str, key_order: &str) -> Vec<String> {
    MIGRATIONS
        .iter()
        .map(|m| {
            m.replace("{serial}", serial)
                .replace("{key_order}", key_order)
        })
        .collect()
}

/// How long a revoked grant stays marked: longer than any token issued
/// under it lives (refresh tokens: 30 days at most).
const REVOKED_GRANT_KEPT_S: u64 = 31 * 24 * 60 * 60;

/// Tables whose rows carry `expires_at` and are purged after it.
/// How long an ended identity session is kept before `purge_expired`
/// removes it: past the longest access-token lifetime, so every token that
/// names it has expired (a session that is not found counts as ended).
pub const ENDED_SESSION_KEEP_S: u64 = 86_400;

const EXPIRING_TABLES: [&str; 10] = [
    "reference_tokens",
    "revoked_jti",
    "revocation_feed",
    "auth_codes",
    "refresh_tokens",
    "grant_jtis",
    "api_sessions",
    "pending_signins",
    "login_failures",
    "revoked_grants",
];

/// One failed login, counted atomically; a window that has ended restarts.
/// PostgreSQL's placeholders; SQLite's store swaps `$` for `?`.
const ADD_FAILURE_PG: &str = "INSERT INTO login_failures (key, count, expires_at) \
     VALUES ($1, 1, CAST($2 AS BIGINT) + CAST($3 AS BIGINT)) \
     ON CONFLICT (key) DO UPDATE SET \
     count = CASE WHEN login_failures.expires_at <= CAST($2 AS BIGINT) THEN 1 ELSE login_failures.count + 1 END, \
     expires_at = CASE WHEN login_failures.expires_at <= CAST($2 AS BIGINT) \
     THEN CAST($2 AS BIGINT) + CAST($3 AS BIGINT) ELSE login_failures.expires_at END \
     RETURNING count";

const APP_COLUMNS: &str = "client_id, name, client_type, secret_hash, redirect_uris, logout_uris, internal_users, community_users, system_user_allowed, system_user, scope, reference_tokens, basic_auth, enabled, public_refresh_tokens, internal, require_dpop, created_at";
const USER_COLUMNS: &str = "login, id, name, email, user_type, is_admin, locale, password_hash";
const TOKEN_COLUMNS: &str = "hash, id, kind, client_id, subject, scopes, description, creator, created_at, expires_at, last_used_at, revoked_at, jkt";
const BASIS_COLUMNS: &str = "grant_id, client_id, login, sid, scopes, auth_time";
const CONSENT_COLUMNS: &str = "login, client_id, scopes, granted_at";
const CODE_COLUMNS: &str = "hash, grant_id, client_id, login, sid, scopes, auth_time, redirect_uri, code_challenge, nonce, state, created_at, expires_at";
const REFRESH_COLUMNS: &str =
    "hash, grant_id, client_id, login, sid, scopes, auth_time, created_at, expires_at, jkt";
/// How many columns `REFRESH_COLUMNS` names.
const REFRESH_WIDTH: usize = 10;
const KEY_COLUMNS: &str = "kid, private_pem, created_at, retire_at";
const IDENTITY_SESSION_COLUMNS: &str = "sid, login, auth_time, created_at, ended_at";
const FEED_COLUMNS: &str = "seq, kind, value, expires_at, issued_before";
const API_SESSION_COLUMNS: &str =
    "key, id, login, client_id, origin, opened_at, last_seen, closes_at, reserved";
const TOKEN_WIDTH: usize = 13;
const APP_WIDTH: usize = 18;

fn prefixed(alias: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A reference token with its app and user in one row (the introspection
/// hot path, so the text is built once), in PostgreSQL's placeholders;
/// SQLite's in `TOKEN_CONTEXT_SQLITE`.
static TOKEN_CONTEXT_PG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {}, {}, {} FROM reference_tokens t \
         LEFT JOIN trusted_apps a ON a.client_id = t.client_id \
         LEFT JOIN users u ON u.login = t.subject WHERE t.hash = $1",
        prefixed("t", TOKEN_COLUMNS),
        prefixed("a", APP_COLUMNS),
        prefixed("u", USER_COLUMNS)
    )
});
static TOKEN_CONTEXT_SQLITE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| TOKEN_CONTEXT_PG.replace('$', "?"));

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn kind_name(kind: RevocationKind) -> &'static str {
    match kind {
        RevocationKind::TokenSha256 => "token_sha256",
        RevocationKind::Jti => "jti",
        RevocationKind::Sid => "sid",
        RevocationKind::ClientId => "client_id",
        RevocationKind::Sub => "sub",
    }
}

fn kind_from_name(name: &str) -> Option<RevocationKind> {
    match name {
        "token_sha256" => Some(RevocationKind::TokenSha256),
        "jti" => Some(RevocationKind::Jti),
        "sid" => Some(RevocationKind::Sid),
        "client_id" => Some(RevocationKind::ClientId),
        "sub" => Some(RevocationKind::Sub),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod conformance;

#[cfg(test)]
mod tests {
    /// The widths rows are read by match the column lists they describe.
    #[test]
    fn column_widths_match_their_lists() {
        let width = |columns: &str| columns.split(',').count();
        assert_eq!(width(super::APP_COLUMNS), super::APP_WIDTH);
        assert_eq!(width(super::TOKEN_COLUMNS), super::TOKEN_WIDTH);
        assert_eq!(width(super::REFRESH_COLUMNS), super::REFRESH_WIDTH);
    }
}

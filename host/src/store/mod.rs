//! Persistence behind one trait. SQLite (WAL, in the data directory) is the
//! default; an in-memory store serves unit tests. Every method that changes
//! state is atomic: a revocation and its feed event commit together.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

use crate::model::{
    AuthCode, Consent, FeedRow, IdentitySession, Redemption, ReferenceToken, RefreshToken,
    SigningKeyRecord, TrustedApp, User,
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
    /// The token.
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

    /// One user by login.
    async fn user(&self, login: &str) -> StoreResult<Option<User>>;
    /// Every user, by login.
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Adds a user; `Conflict` if the login exists.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;

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

    /// Feed rows after `cursor`, oldest first, at most `limit`.
    async fn feed(&self, cursor: u64, limit: usize) -> StoreResult<Vec<FeedRow>>;

    /// Starts an identity session.
    async fn insert_session(&self, session: &IdentitySession) -> StoreResult<()>;
    /// One identity session by `sid`.
    async fn session(&self, sid: &str) -> StoreResult<Option<IdentitySession>>;
    /// Ends a session: its refresh tokens die and a `sid` revocation event
    /// (kept until `event_expires_at`) tells the edge, in one transaction.
    /// False when it had already ended or does not exist.
    async fn end_session(&self, sid: &str, now: u64, event_expires_at: u64) -> StoreResult<bool>;

    /// Stores a new authorization code.
    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Consumes a code atomically: exactly one caller gets `Fresh`.
    async fn redeem_auth_code(&self, hash: &str, now: u64) -> StoreResult<Redemption<AuthCode>>;

    /// Stores a new refresh token.
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    /// Rotates a refresh token atomically: the old one is consumed and its
    /// successor (`next_hash`, same grant, same absolute expiry) stored in one
    /// transaction; exactly one caller gets `Fresh` (the old record). A token
    /// already rotated or revoked comes back as `Replayed`.
    async fn rotate_refresh_token(
        &self,
        hash: &str,
        next_hash: &str,
        now: u64,
    ) -> StoreResult<Redemption<RefreshToken>>;
    /// Records an access token (`jti`) issued under a grant.
    async fn record_grant_jti(&self, grant_id: &str, jti: &str, expires_at: u64)
    -> StoreResult<()>;
    /// Revokes a whole grant: its refresh tokens and the access tokens
    /// recorded under it (as `jti` revocations with feed events). Returns how
    /// many records it revoked.
    async fn revoke_grant(&self, grant_id: &str, now: u64) -> StoreResult<usize>;
    /// Replaces a user's password hash; every refresh token of the user dies
    /// in the same transaction. False when the user does not exist.
    async fn set_password_hash(&self, login: &str, hash: &str, now: u64) -> StoreResult<bool>;

    /// A user's remembered consent for an app, if not revoked.
    async fn consent(&self, login: &str, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Every remembered consent of a user, by app.
    async fn consents_of(&self, login: &str) -> StoreResult<Vec<Consent>>;
    /// Remembers (or widens) a consent.
    async fn save_consent(&self, consent: &Consent) -> StoreResult<()>;
    /// Revokes a consent; false when there was none.
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

    /// Deletes up to `batch` expired records of each kind; returns how many.
    async fn purge_expired(&self, now: u64, batch: usize) -> StoreResult<usize>;
}

#[cfg(test)]
pub(crate) mod conformance;

//! The embedded default: SQLite in WAL mode with `synchronous=FULL`, so a write
//! a response reports as done survives `kill -9` (and power loss). Reads spread
//! over a few connections; writes go through one, so they queue in-process
//! instead of spinning on SQLITE_BUSY. Other processes (the CLI) share the file.

mod apps;
mod conn;
mod data;
mod grants;
mod revocation;
mod sessions;
mod tokens;

pub use conn::SqliteStore;

use async_trait::async_trait;
use erpgate::revocation::RevocationEvent;

use crate::records::{
    ApiSession, AuthCode, Consent, FeedRow, IdentitySession, License, Redemption, ReferenceToken,
    RefreshToken, SigningKeyRecord, TrustedApp, User,
};
use crate::{Store, StoreResult, TokenContext};

#[async_trait]
impl Store for SqliteStore {
    async fn app(&self, client_id: &str) -> StoreResult<Option<TrustedApp>> {
        apps::app(self, client_id).await
    }

    async fn apps(&self) -> StoreResult<Vec<TrustedApp>> {
        apps::apps(self).await
    }

    async fn insert_app(&self, app: &TrustedApp) -> StoreResult<()> {
        apps::insert_app(self, app).await
    }

    async fn set_app_enabled(&self, client_id: &str, enabled: bool) -> StoreResult<bool> {
        apps::set_app_enabled(self, client_id, enabled).await
    }

    async fn delete_app(&self, client_id: &str, now: u64) -> StoreResult<bool> {
        apps::delete_app(self, client_id, now).await
    }

    async fn set_app_secret_hash(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        apps::set_app_secret_hash(self, client_id, secret_hash).await
    }

    async fn update_app(&self, app: &TrustedApp) -> StoreResult<bool> {
        apps::update_app(self, app).await
    }

    async fn user(&self, login: &str) -> StoreResult<Option<User>> {
        apps::user(self, login).await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        apps::users(self).await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        apps::insert_user(self, user).await
    }

    async fn update_user_profile(&self, user: &User) -> StoreResult<bool> {
        apps::update_user_profile(self, user).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        apps::signing_keys(self).await
    }

    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        apps::insert_first_signing_key(self, key).await
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        retire_old_at: u64,
    ) -> StoreResult<()> {
        apps::rotate_signing_key(self, key, retire_old_at).await
    }

    async fn insert_reference_token(&self, token: &ReferenceToken) -> StoreResult<()> {
        tokens::insert_reference_token(self, token).await
    }

    async fn reference_token(&self, hash: &str) -> StoreResult<Option<ReferenceToken>> {
        tokens::reference_token(self, hash).await
    }

    async fn reference_token_context(&self, hash: &str) -> StoreResult<Option<TokenContext>> {
        tokens::reference_token_context(self, hash).await
    }

    async fn reference_tokens(&self) -> StoreResult<Vec<ReferenceToken>> {
        tokens::reference_tokens(self).await
    }

    async fn revoke_reference_token(
        &self,
        hash_or_id: &str,
        now: u64,
    ) -> StoreResult<Option<ReferenceToken>> {
        tokens::revoke_reference_token(self, hash_or_id, now).await
    }

    async fn record_token_use(&self, uses: &[(String, u64)]) -> StoreResult<()> {
        tokens::record_token_use(self, uses).await
    }

    async fn revoke_jti(&self, jti: &str, expires_at: u64, _now: u64) -> StoreResult<bool> {
        revocation::revoke_jti(self, jti, expires_at).await
    }

    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        revocation::jti_revoked(self, jti).await
    }

    async fn publish_revocation(&self, event: &RevocationEvent) -> StoreResult<()> {
        revocation::publish(self, event).await
    }

    async fn feed(&self, cursor: u64, limit: usize) -> StoreResult<Vec<FeedRow>> {
        revocation::feed(self, cursor, limit).await
    }

    async fn insert_session(&self, session: &IdentitySession) -> StoreResult<()> {
        sessions::insert_session(self, session).await
    }

    async fn session(&self, sid: &str) -> StoreResult<Option<IdentitySession>> {
        sessions::session(self, sid).await
    }

    async fn reauthenticate_session(&self, sid: &str, auth_time: u64) -> StoreResult<bool> {
        sessions::reauthenticate_session(self, sid, auth_time).await
    }

    async fn expired_sessions(&self, auth_before: u64, limit: usize) -> StoreResult<Vec<String>> {
        sessions::expired_sessions(self, auth_before, limit).await
    }

    async fn end_session(&self, sid: &str, now: u64, event_expires_at: u64) -> StoreResult<bool> {
        sessions::end_session(self, sid, now, event_expires_at).await
    }

    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()> {
        grants::insert_auth_code(self, code).await
    }

    async fn redeem_auth_code(&self, hash: &str, now: u64) -> StoreResult<Redemption<AuthCode>> {
        grants::redeem_auth_code(self, hash, now).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<bool> {
        grants::insert_refresh_token(self, token).await
    }

    async fn refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshToken>> {
        grants::refresh_token(self, hash).await
    }

    async fn rotate_refresh_token(
        &self,
        hash: &str,
        next_hash: &str,
        now: u64,
        reuse_since: Option<u64>,
    ) -> StoreResult<Redemption<RefreshToken>> {
        grants::rotate_refresh_token(self, hash, next_hash, now, reuse_since).await
    }

    async fn record_grant_jti(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> StoreResult<bool> {
        grants::record_grant_jti(self, grant_id, jti, expires_at).await
    }

    async fn revoke_grant(&self, grant_id: &str, now: u64) -> StoreResult<usize> {
        grants::revoke_grant(self, grant_id, now).await
    }

    async fn set_password_hash(
        &self,
        login: &str,
        hash: &str,
        now: u64,
        event_expires_at: u64,
    ) -> StoreResult<bool> {
        apps::set_password_hash(self, login, hash, now, event_expires_at).await
    }

    async fn consent(&self, login: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        grants::consent(self, login, client_id).await
    }

    async fn consents_of(&self, login: &str) -> StoreResult<Vec<Consent>> {
        grants::consents_of(self, login).await
    }

    async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
        grants::save_consent(self, consent).await
    }

    async fn revoke_consent(&self, login: &str, client_id: &str, now: u64) -> StoreResult<bool> {
        grants::revoke_consent(self, login, client_id, now).await
    }

    async fn records(&self, entity_set: &str) -> StoreResult<Vec<(String, String)>> {
        data::records(self, entity_set).await
    }

    async fn record(&self, entity_set: &str, id: &str) -> StoreResult<Option<String>> {
        data::record(self, entity_set, id).await
    }

    async fn insert_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<()> {
        data::insert_record(self, entity_set, id, json).await
    }

    async fn update_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<bool> {
        data::update_record(self, entity_set, id, json).await
    }

    async fn delete_record(&self, entity_set: &str, id: &str) -> StoreResult<bool> {
        data::delete_record(self, entity_set, id).await
    }

    async fn enter_api_session(
        &self,
        candidate: &ApiSession,
        license: &License,
        now: u64,
    ) -> StoreResult<Option<ApiSession>> {
        sessions::enter_api_session(self, candidate, license, now).await
    }

    async fn resume_api_session(&self, id: &str, now: u64) -> StoreResult<Option<ApiSession>> {
        sessions::resume_api_session(self, id, now).await
    }

    async fn close_api_session(&self, key_or_id: &str) -> StoreResult<bool> {
        sessions::close_api_session(self, key_or_id).await
    }

    async fn api_sessions(&self, now: u64) -> StoreResult<Vec<ApiSession>> {
        sessions::api_sessions(self, now).await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        data::shared_secret(self, name, candidate).await
    }

    async fn put_signin(&self, id: &str, json: &str, expires_at: u64) -> StoreResult<()> {
        sessions::put_signin(self, id, json, expires_at).await
    }

    async fn signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        sessions::signin(self, id, now).await
    }

    async fn take_signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        sessions::take_signin(self, id, now).await
    }

    async fn add_login_failure(&self, key: &str, now: u64, window_s: u64) -> StoreResult<u32> {
        sessions::add_login_failure(self, key, now, window_s).await
    }

    async fn login_failures(&self, key: &str, now: u64) -> StoreResult<u32> {
        sessions::login_failures(self, key, now).await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        sessions::clear_login_failures(self, key).await
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> StoreResult<usize> {
        revocation::purge_expired(self, now, batch).await
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(dir.path()).unwrap();
        crate::conformance::run(&store).await;
        // Reopening runs no migration twice and keeps the data.
        drop(store);
        let again = crate::SqliteStore::open(dir.path()).unwrap();
        use crate::Store as _;
        assert_eq!(again.apps().await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_processes_race() {
        // Two stores on one file, as the host and the CLI (or two hosts).
        let dir = tempfile::tempdir().unwrap();
        let a = crate::SqliteStore::open(dir.path()).unwrap();
        let b = crate::SqliteStore::open(dir.path()).unwrap();
        crate::conformance::race(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
    }
}

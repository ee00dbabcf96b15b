//! PostgreSQL, for several host replicas sharing one state. Every state change
//! is one statement with a condition (`… WHERE consumed_at IS NULL
//! RETURNING …`, `INSERT … ON CONFLICT DO NOTHING`) or one transaction, never
//! a read followed by a blind write. Where a rule spans rows (the first
//! signing key, the license count) or order matters across processes (the
//! revocation feed), a transaction-scoped advisory lock serialises the
//! writers:
//!
//! - the feed: `seq` comes from an identity column, and two transactions can
//!   commit in the opposite order of their `seq`s; a reader whose cursor
//!   passed the later one would never see the earlier. Holding the feed lock
//!   from before the insert to the commit makes `seq` order commit order, so
//!   a cursor means the same thing at every replica;
//! - the license table: counting the open sessions and taking a slot happen
//!   under one lock;
//! - signing keys: rotation retires and inserts under one lock.
//!
//! Migrations run at start-up under a session advisory lock, so replicas
//! starting together apply each exactly once. Cleanup deletes in batches
//! with `FOR UPDATE SKIP LOCKED`, so replicas cleaning at once never wait on
//! each other's rows.

mod apps;
mod conn;
mod data;
mod grants;
mod revocation;
mod sessions;
mod tokens;

pub use conn::PostgresStore;

use async_trait::async_trait;
use erpgate::revocation::RevocationEvent;

use crate::records::{
    ApiSession, AuthCode, Consent, FeedRow, IdentitySession, License, Redemption, ReferenceToken,
    RefreshToken, SigningKeyRecord, TrustedApp, User,
};
use crate::{Store, StoreResult, TokenContext};

#[async_trait]
impl Store for PostgresStore {
    async fn app(&self, client_id: &str) -> StoreResult<Option<TrustedApp>> {
        apps::app(self, client_id).await
    }

    async fn apps(&self) -> StoreResult<Vec<TrustedApp>> {
        apps::apps(self).await
    }

    async fn insert_app(&self, a: &TrustedApp) -> StoreResult<()> {
        apps::insert_app(self, a).await
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

    async fn insert_user(&self, u: &User) -> StoreResult<()> {
        apps::insert_user(self, u).await
    }

    async fn update_user_profile(&self, u: &User) -> StoreResult<bool> {
        apps::update_user_profile(self, u).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        apps::signing_keys(self).await
    }

    async fn insert_first_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<bool> {
        apps::insert_first_signing_key(self, k).await
    }

    async fn rotate_signing_key(
        &self,
        k: &SigningKeyRecord,
        retire_old_at: u64,
    ) -> StoreResult<()> {
        apps::rotate_signing_key(self, k, retire_old_at).await
    }

    async fn insert_reference_token(&self, t: &ReferenceToken) -> StoreResult<()> {
        tokens::insert_reference_token(self, t).await
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

    async fn insert_session(&self, s: &IdentitySession) -> StoreResult<()> {
        sessions::insert_session(self, s).await
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
pub(crate) mod tests {
    use std::sync::Arc;

    use crate::PostgresStore;

    /// A fresh database on the test server (`ERPGATE_TEST_POSTGRES`, a URL
    /// to its `postgres` database; `scripts/postgres start` prints one), or
    /// `None` when no server is configured. `scripts/test` always starts one
    /// and sets `ERPGATE_REQUIRE_POSTGRES=1`, so there a missing server fails.
    pub(crate) async fn fresh_database() -> Option<String> {
        let Ok(server) = std::env::var("ERPGATE_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("ERPGATE_REQUIRE_POSTGRES").is_none(),
                "ERPGATE_TEST_POSTGRES is not set but ERPGATE_REQUIRE_POSTGRES is"
            );
            eprintln!("skipped: set ERPGATE_TEST_POSTGRES to run the PostgreSQL store suite");
            return None;
        };
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let name = format!(
            "erpgate_test_{}",
            crate::secrets::random_hex(8).to_lowercase()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (base, _) = server.rsplit_once('/').unwrap();
        Some(format!("{base}/{name}"))
    }

    #[tokio::test]
    async fn conformance() {
        let Some(url) = fresh_database().await else {
            return;
        };
        let store = PostgresStore::connect(&url).await.unwrap();
        crate::conformance::run(&store).await;
        // Reconnecting runs no migration twice and keeps the data.
        drop(store);
        let again = PostgresStore::connect(&url).await.unwrap();
        use crate::Store as _;
        assert_eq!(again.apps().await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_race() {
        let Some(url) = fresh_database().await else {
            return;
        };
        // Two pools racing their migrations, as replicas starting together.
        let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
        crate::conformance::race(Arc::new(a.unwrap()), Arc::new(b.unwrap())).await;
    }
}

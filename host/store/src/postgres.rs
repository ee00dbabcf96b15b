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

use std::str::FromStr as _;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use erpgate::revocation::RevocationKind;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::rows::{self, Columns};
use super::{
    API_SESSION_COLUMNS, APP_COLUMNS, BASIS_COLUMNS, CODE_COLUMNS, CONSENT_COLUMNS, FEED_COLUMNS,
    IDENTITY_SESSION_COLUMNS, KEY_COLUMNS, REFRESH_COLUMNS, Store, StoreError, StoreResult,
    TOKEN_COLUMNS, TokenContext, USER_COLUMNS,
};
use crate::records::{
    ApiSession, AuthCode, Consent, FeedRow, IDLE_TIMEOUT_S, IdentitySession, License, Redemption,
    ReferenceToken, RefreshToken, SigningKeyRecord, TrustedApp, User,
};

/// Advisory lock keys (`pg_advisory_lock` takes one 64-bit key).
const LOCK_MIGRATIONS: i64 = 0x6572_7067_6174_0001;
const LOCK_FEED: i64 = 0x6572_7067_6174_0002;
const LOCK_KEYS: i64 = 0x6572_7067_6174_0003;
const LOCK_LICENSE: i64 = 0x6572_7067_6174_0004;

/// Connections per replica.
const POOL_SIZE: usize = 16;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// PostgreSQL-backed store.
pub struct PostgresStore {
    pool: Pool,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The server's own message when there is one (`tokio_postgres` alone says
/// only "db error"). Neither carries the connection URL.
fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(db.to_string()),
        None => backend(e),
    }
}

fn conflict_or_backend(e: tokio_postgres::Error, what: &str) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what.to_owned())
    } else {
        pg(e)
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

async fn rows<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> StoreResult<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&statement, params).await.map_err(pg)
}

async fn row<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> StoreResult<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_opt(&statement, params).await.map_err(pg)
}

async fn exec<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> StoreResult<u64> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&statement, params).await.map_err(pg)
}

async fn lock<C: GenericClient>(c: &C, key: i64) -> StoreResult<()> {
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&key]).await?;
    Ok(())
}

impl Columns for Row {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.try_get(i).map_err(pg)
    }

    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.try_get(i).map_err(pg)
    }

    fn int(&self, i: usize) -> StoreResult<u64> {
        Ok(u64::try_from(self.try_get::<_, i64>(i).map_err(pg)?).unwrap_or(0))
    }

    fn opt_int(&self, i: usize) -> StoreResult<Option<u64>> {
        let v: Option<i64> = self.try_get(i).map_err(pg)?;
        Ok(v.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.try_get(i).map_err(pg)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn all<T>(rows: &[Row], map: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}

async fn push_feed<C: GenericClient>(
    tx: &C,
    kind: RevocationKind,
    value: &str,
    expires_at: u64,
) -> StoreResult<()> {
    // Held to the commit: see the module docs.
    lock(tx, LOCK_FEED).await?;
    exec(
        tx,
        "INSERT INTO revocation_feed (kind, value, expires_at) VALUES ($1, $2, $3)",
        &[&super::kind_name(kind), &value, &to_i64(expires_at)],
    )
    .await?;
    Ok(())
}

/// Stores a refresh token unless its grant is revoked; whether it was
/// stored. The caller holds the grant's lock.
async fn insert_refresh<C: GenericClient>(c: &C, t: &RefreshToken) -> StoreResult<bool> {
    let b = &t.basis;
    let statement = c
        .prepare_cached(&format!(
            "INSERT INTO refresh_tokens (hash, {BASIS_COLUMNS}, created_at, expires_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE NOT EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = $2)"
        ))
        .await
        .map_err(pg)?;
    let stored = c
        .execute(
            &statement,
            &[
                &t.hash,
                &b.grant_id,
                &b.client_id,
                &b.login,
                &b.sid,
                &b.scopes.to_string(),
                &to_i64(b.auth_time),
                &to_i64(t.created_at),
                &to_i64(t.expires_at),
            ],
        )
        .await
        .map_err(|e| conflict_or_backend(e, "refresh token"))?;
    Ok(stored == 1)
}

/// Serialises everything issued under one grant with its revocation: the
/// revocation marks the grant, and an insert under the same lock sees it.
async fn lock_grant<C: GenericClient>(tx: &C, grant_id: &str) -> StoreResult<()> {
    exec(
        tx,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&grant_id],
    )
    .await?;
    Ok(())
}

/// Revokes a `jti` with its feed event; false when it already was.
async fn revoke_jti_in<C: GenericClient>(tx: &C, jti: &str, expires_at: u64) -> StoreResult<bool> {
    let added = exec(
        tx,
        "INSERT INTO revoked_jti (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        &[&jti, &to_i64(expires_at)],
    )
    .await?;
    if added == 1 {
        push_feed(tx, RevocationKind::Jti, jti, expires_at).await?;
    }
    Ok(added == 1)
}

/// Touches the live session of a key or id: the same SQL at the fast path
/// and under the license lock.
const TOUCH: &str = "UPDATE api_sessions SET last_seen = GREATEST(last_seen, $2), \
     expires_at = LEAST(GREATEST(last_seen, $2) + $3, COALESCE(closes_at, 9223372036854775807)) \
     WHERE {which} = $1 AND expires_at > $2 RETURNING key, id, login, client_id, origin, opened_at, last_seen, closes_at, reserved";

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and
    /// migrates the database. The URL is never logged.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|_| StoreError::Backend("the PostgreSQL URL does not parse".into()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(backend)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(backend)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut c = self.client().await?;
        // A session lock: every replica starting now waits here, and the
        // first applies what is missing.
        c.execute("SELECT pg_advisory_lock($1)", &[&LOCK_MIGRATIONS])
            .await
            .map_err(pg)?;
        let outcome = Self::apply_migrations(&mut c).await;
        let unlocked = c
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_MIGRATIONS])
            .await
            .map_err(pg);
        outcome.and(unlocked.map(|_| ()))
    }

    async fn apply_migrations(c: &mut deadpool_postgres::Object) -> StoreResult<()> {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS erpgate_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg)?;
        let done: Option<i32> = c
            .query_one("SELECT max(version) FROM erpgate_migrations", &[])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        let done = usize::try_from(done.unwrap_or(0)).unwrap_or(0);
        let migrations = super::migrations(
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            ",\n    ord BIGINT GENERATED ALWAYS AS IDENTITY",
        );
        for (i, sql) in migrations.iter().enumerate().skip(done) {
            let version = i32::try_from(i + 1).map_err(backend)?;
            let tx = c.transaction().await.map_err(pg)?;
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO erpgate_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            tracing::info!(version, "PostgreSQL migration applied");
        }
        Ok(())
    }

    /// The row of one query, mapped, on a pooled connection.
    async fn one<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let c = self.client().await?;
        row(&c, sql, params).await?.map(|r| map(&r)).transpose()
    }

    /// Every row of one query, mapped, on a pooled connection.
    async fn list<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        let c = self.client().await?;
        all(&rows(&c, sql, params).await?, map)
    }

    /// One statement on a pooled connection; the rows it changed.
    async fn run(&self, sql: &str, params: Params<'_>) -> StoreResult<u64> {
        let c = self.client().await?;
        exec(&c, sql, params).await
    }

    async fn touch<C: GenericClient>(
        c: &C,
        which: &str,
        value: &str,
        now: u64,
    ) -> StoreResult<Option<ApiSession>> {
        row(
            c,
            &TOUCH.replace("{which}", which),
            &[&value, &to_i64(now), &to_i64(IDLE_TIMEOUT_S)],
        )
        .await?
        .map(|r| rows::api_session(&r))
        .transpose()
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn app(&self, client_id: &str) -> StoreResult<Option<TrustedApp>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM trusted_apps WHERE client_id = $1");
        self.one(&sql, &[&client_id], |r| rows::app(r, 0)).await
    }

    async fn apps(&self) -> StoreResult<Vec<TrustedApp>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM trusted_apps ORDER BY client_id");
        self.list(&sql, &[], |r| rows::app(r, 0)).await
    }

    async fn insert_app(&self, a: &TrustedApp) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            &format!("INSERT INTO trusted_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"),
            &[
                &a.client_id,
                &a.name,
                &a.client_type.code(),
                &a.secret_hash,
                &a.redirect_uris.join(","),
                &a.logout_uris.join(","),
                &a.internal_users_allowed,
                &a.community_users_allowed,
                &a.system_user_allowed,
                &a.system_user,
                &a.scope.to_string(),
                &a.reference_tokens.code(),
                &a.basic_auth_allowed,
                &a.enabled,
                &to_i64(a.created_at),
            ],
        )
        .await
        .map_err(|e| conflict_or_backend(e, &a.client_id))?;
        Ok(())
    }

    async fn set_app_enabled(&self, client_id: &str, enabled: bool) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let found = exec(
            &tx,
            "UPDATE trusted_apps SET enabled = $2 WHERE client_id = $1",
            &[&client_id, &enabled],
        )
        .await?
            > 0;
        if found && !enabled {
            // Disabling an app ends its refresh tokens for good.
            exec(
                &tx,
                "UPDATE refresh_tokens SET dead_at = extract(epoch from now())::bigint WHERE client_id = $1 AND dead_at IS NULL",
                &[&client_id],
            )
            .await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(found)
    }

    async fn set_app_secret_hash(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        let sql = "UPDATE trusted_apps SET secret_hash = $2 WHERE client_id = $1";
        Ok(self.run(sql, &[&client_id, &secret_hash]).await? > 0)
    }

    async fn user(&self, login: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
        self.one(&sql, &[&login], |r| rows::user(r, 0)).await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
        self.list(&sql, &[], |r| rows::user(r, 0)).await
    }

    async fn insert_user(&self, u: &User) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            &format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[
                &u.login,
                &u.id,
                &u.name,
                &u.email,
                &u.user_type,
                &u.is_admin,
                &u.locale,
                &u.password_hash,
            ],
        )
        .await
        .map_err(|e| conflict_or_backend(e, &u.login))?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, ord DESC");
        self.list(&sql, &[], rows::signing_key).await
    }

    async fn insert_first_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        lock(&tx, LOCK_KEYS).await?;
        if row(&tx, "SELECT 1 FROM signing_keys LIMIT 1", &[])
            .await?
            .is_some()
        {
            return Ok(false);
        }
        exec(
            &tx,
            "INSERT INTO signing_keys (kid, private_pem, created_at, retire_at) VALUES ($1, $2, $3, NULL)",
            &[&k.kid, &k.private_pem, &to_i64(k.created_at)],
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(true)
    }

    async fn rotate_signing_key(
        &self,
        k: &SigningKeyRecord,
        retire_old_at: u64,
    ) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        lock(&tx, LOCK_KEYS).await?;
        exec(
            &tx,
            "UPDATE signing_keys SET retire_at = $1 WHERE retire_at IS NULL",
            &[&to_i64(retire_old_at)],
        )
        .await?;
        tx.execute(
            "INSERT INTO signing_keys (kid, private_pem, created_at, retire_at) VALUES ($1, $2, $3, NULL)",
            &[&k.kid, &k.private_pem, &to_i64(k.created_at)],
        )
        .await
        .map_err(|e| conflict_or_backend(e, &k.kid))?;
        tx.commit().await.map_err(pg)
    }

    async fn insert_reference_token(&self, t: &ReferenceToken) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            &format!("INSERT INTO reference_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
            &[
                &t.hash,
                &t.id,
                &t.kind.as_str(),
                &t.client_id,
                &t.subject,
                &t.scopes.to_string(),
                &t.description,
                &t.creator,
                &to_i64(t.created_at),
                &to_i64(t.expires_at),
                &t.last_used_at.map(to_i64),
                &t.revoked_at.map(to_i64),
            ],
        )
        .await
        .map_err(|e| conflict_or_backend(e, &t.id))?;
        Ok(())
    }

    async fn reference_token(&self, hash: &str) -> StoreResult<Option<ReferenceToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM reference_tokens WHERE hash = $1");
        self.one(&sql, &[&hash], rows::token).await
    }

    async fn reference_token_context(&self, hash: &str) -> StoreResult<Option<TokenContext>> {
        self.one(&super::TOKEN_CONTEXT_PG, &[&hash], rows::token_context)
            .await
    }

    async fn reference_tokens(&self) -> StoreResult<Vec<ReferenceToken>> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM reference_tokens ORDER BY created_at DESC, id");
        self.list(&sql, &[], rows::token).await
    }

    async fn revoke_reference_token(
        &self,
        hash_or_id: &str,
        now: u64,
    ) -> StoreResult<Option<ReferenceToken>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let sql = format!(
            "UPDATE reference_tokens SET revoked_at = $2 WHERE (hash = $1 OR id = $1) AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"
        );
        let Some(r) = row(&tx, &sql, &[&hash_or_id, &to_i64(now)]).await? else {
            return Ok(None);
        };
        let token = rows::token(&r)?;
        push_feed(
            &tx,
            RevocationKind::TokenSha256,
            &token.hash,
            token.expires_at,
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(Some(token))
    }

    async fn record_token_use(&self, uses: &[(String, u64)]) -> StoreResult<()> {
        // One statement; rows locked in hash order so two replicas flushing
        // overlapping batches cannot deadlock.
        let mut sorted: Vec<&(String, u64)> = uses.iter().collect();
        sorted.sort();
        let hashes: Vec<&str> = sorted.iter().map(|(h, _)| h.as_str()).collect();
        let times: Vec<i64> = sorted.iter().map(|(_, t)| to_i64(*t)).collect();
        let c = self.client().await?;
        exec(
            &c,
            "UPDATE reference_tokens t SET last_used_at = GREATEST(COALESCE(t.last_used_at, 0), u.at) \
             FROM (SELECT hash, max(at) AS at FROM unnest($1::text[], $2::bigint[]) AS x(hash, at) GROUP BY hash) u \
             WHERE t.hash = u.hash",
            &[&hashes, &times],
        )
        .await?;
        Ok(())
    }

    async fn revoke_jti(&self, jti: &str, expires_at: u64, _now: u64) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let revoked = revoke_jti_in(&tx, jti, expires_at).await?;
        tx.commit().await.map_err(pg)?;
        Ok(revoked)
    }

    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        let sql = "SELECT 1 FROM revoked_jti WHERE jti = $1";
        Ok(self.one(sql, &[&jti], |_| Ok(())).await?.is_some())
    }

    async fn feed(&self, cursor: u64, limit: usize) -> StoreResult<Vec<FeedRow>> {
        let sql = format!(
            "SELECT {FEED_COLUMNS} FROM revocation_feed WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        self.list(
            &sql,
            &[&to_i64(cursor), &to_i64(limit as u64)],
            rows::feed_row,
        )
        .await
    }

    async fn insert_session(&self, s: &IdentitySession) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO identity_sessions (sid, login, auth_time, created_at, ended_at) VALUES ($1, $2, $3, $4, $5)",
            &[&s.sid, &s.login, &to_i64(s.auth_time), &to_i64(s.created_at), &s.ended_at.map(to_i64)],
        )
        .await
        .map_err(|e| conflict_or_backend(e, &s.sid))?;
        Ok(())
    }

    async fn session(&self, sid: &str) -> StoreResult<Option<IdentitySession>> {
        let sql =
            format!("SELECT {IDENTITY_SESSION_COLUMNS} FROM identity_sessions WHERE sid = $1");
        self.one(&sql, &[&sid], rows::identity_session).await
    }

    async fn end_session(&self, sid: &str, now: u64, event_expires_at: u64) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let ended = exec(
            &tx,
            "UPDATE identity_sessions SET ended_at = $2 WHERE sid = $1 AND ended_at IS NULL",
            &[&sid, &to_i64(now)],
        )
        .await?;
        if ended == 0 {
            return Ok(false);
        }
        exec(
            &tx,
            "UPDATE refresh_tokens SET dead_at = $2 WHERE sid = $1 AND dead_at IS NULL",
            &[&sid, &to_i64(now)],
        )
        .await?;
        push_feed(&tx, RevocationKind::Sid, sid, event_expires_at).await?;
        tx.commit().await.map_err(pg)?;
        Ok(true)
    }

    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()> {
        let b = &code.basis;
        let c = self.client().await?;
        c.execute(
            &format!("INSERT INTO auth_codes (hash, {BASIS_COLUMNS}, redirect_uri, code_challenge, nonce, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
            &[
                &code.hash,
                &b.grant_id,
                &b.client_id,
                &b.login,
                &b.sid,
                &b.scopes.to_string(),
                &to_i64(b.auth_time),
                &code.redirect_uri,
                &code.code_challenge,
                &code.nonce,
                &code.state,
                &to_i64(code.created_at),
                &to_i64(code.expires_at),
            ],
        )
        .await
        .map_err(|e| conflict_or_backend(e, "authorization code"))?;
        Ok(())
    }

    async fn redeem_auth_code(&self, hash: &str, now: u64) -> StoreResult<Redemption<AuthCode>> {
        let c = self.client().await?;
        // Concurrent redeemers queue on the row lock; every one after the
        // first re-checks `consumed_at IS NULL` and updates nothing.
        let consumed = exec(
            &c,
            "UPDATE auth_codes SET consumed_at = $2 WHERE hash = $1 AND consumed_at IS NULL",
            &[&hash, &to_i64(now)],
        )
        .await?;
        let select = format!("SELECT {CODE_COLUMNS} FROM auth_codes WHERE hash = $1");
        let code = row(&c, &select, &[&hash])
            .await?
            .map(|r| rows::code(&r))
            .transpose()?;
        Ok(match code {
            None => Redemption::Unknown,
            Some(code) if consumed == 1 => Redemption::Fresh(code),
            Some(code) => Redemption::Replayed(code),
        })
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        lock_grant(&tx, &token.basis.grant_id).await?;
        let stored = insert_refresh(&tx, token).await?;
        tx.commit().await.map_err(pg)?;
        Ok(stored)
    }

    async fn rotate_refresh_token(
        &self,
        hash: &str,
        next_hash: &str,
        now: u64,
    ) -> StoreResult<Redemption<RefreshToken>> {
        let mut c = self.client().await?;
        let grant = row(
            &c,
            "SELECT grant_id FROM refresh_tokens WHERE hash = $1",
            &[&hash],
        )
        .await?;
        let Some(grant) = grant else {
            return Ok(Redemption::Unknown);
        };
        let grant = grant.text(0)?;
        let tx = c.transaction().await.map_err(pg)?;
        // The grant's lock before the row's, as a revocation takes them.
        lock_grant(&tx, &grant).await?;
        let returning = format!(
            "UPDATE refresh_tokens SET dead_at = $2 WHERE hash = $1 AND dead_at IS NULL RETURNING {REFRESH_COLUMNS}"
        );
        if let Some(r) = row(&tx, &returning, &[&hash, &to_i64(now)]).await? {
            let old = rows::refresh(&r)?;
            let next = RefreshToken {
                hash: next_hash.to_owned(),
                created_at: now,
                ..old.clone()
            };
            insert_refresh(&tx, &next).await?;
            tx.commit().await.map_err(pg)?;
            return Ok(Redemption::Fresh(old));
        }
        let select = format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE hash = $1");
        Ok(match row(&tx, &select, &[&hash]).await? {
            Some(r) => Redemption::Replayed(rows::refresh(&r)?),
            None => Redemption::Unknown,
        })
    }

    async fn record_grant_jti(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        lock_grant(&tx, grant_id).await?;
        let revoked = row(
            &tx,
            "SELECT 1 FROM revoked_grants WHERE grant_id = $1",
            &[&grant_id],
        )
        .await?
        .is_some();
        if revoked {
            revoke_jti_in(&tx, jti, expires_at).await?;
        } else {
            exec(
                &tx,
                "INSERT INTO grant_jtis (grant_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&grant_id, &jti, &to_i64(expires_at)],
            )
            .await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(!revoked)
    }

    async fn revoke_grant(&self, grant_id: &str, now: u64) -> StoreResult<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        lock_grant(&tx, grant_id).await?;
        exec(
            &tx,
            "INSERT INTO revoked_grants (grant_id, expires_at) VALUES ($1, $2) ON CONFLICT (grant_id) DO NOTHING",
            &[&grant_id, &to_i64(now.saturating_add(super::REVOKED_GRANT_KEPT_S))],
        )
        .await?;
        let killed = exec(
            &tx,
            "UPDATE refresh_tokens SET dead_at = $2 WHERE grant_id = $1 AND dead_at IS NULL",
            &[&grant_id, &to_i64(now)],
        )
        .await?;
        let mut count = usize::try_from(killed).unwrap_or(usize::MAX);
        // Taking the recorded jtis deletes them, so a second revocation of
        // the same grant on another replica finds none to publish twice.
        let jtis = rows(
            &tx,
            "DELETE FROM grant_jtis WHERE grant_id = $1 RETURNING jti, expires_at",
            &[&grant_id],
        )
        .await?;
        for r in &jtis {
            let (jti, expires_at) = (r.text(0)?, r.int(1)?);
            if expires_at > now && revoke_jti_in(&tx, &jti, expires_at).await? {
                count += 1;
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(count)
    }

    async fn set_password_hash(&self, login: &str, hash: &str, now: u64) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let changed = exec(
            &tx,
            "UPDATE users SET password_hash = $2 WHERE login = $1",
            &[&login, &hash],
        )
        .await?;
        exec(
            &tx,
            "UPDATE refresh_tokens SET dead_at = $2 WHERE login = $1 AND dead_at IS NULL",
            &[&login, &to_i64(now)],
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(changed > 0)
    }

    async fn consent(&self, login: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        let sql =
            format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE login = $1 AND client_id = $2");
        self.one(&sql, &[&login, &client_id], rows::consent).await
    }

    async fn consents_of(&self, login: &str) -> StoreResult<Vec<Consent>> {
        let sql =
            format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE login = $1 ORDER BY client_id");
        self.list(&sql, &[&login], rows::consent).await
    }

    async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
        let sql = "INSERT INTO consents (login, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT (login, client_id) DO UPDATE SET scopes = EXCLUDED.scopes, granted_at = EXCLUDED.granted_at";
        let scopes = consent.scopes.to_string();
        let params: Params<'_> = &[
            &consent.login,
            &consent.client_id,
            &scopes,
            &to_i64(consent.granted_at),
        ];
        self.run(sql, params).await.map(drop)
    }

    async fn revoke_consent(&self, login: &str, client_id: &str, _now: u64) -> StoreResult<bool> {
        let sql = "DELETE FROM consents WHERE login = $1 AND client_id = $2";
        Ok(self.run(sql, &[&login, &client_id]).await? > 0)
    }

    async fn records(&self, entity_set: &str) -> StoreResult<Vec<(String, String)>> {
        let sql = "SELECT id, body FROM api_records WHERE entity_set = $1 ORDER BY id";
        self.list(sql, &[&entity_set], |r| Ok((r.text(0)?, r.text(1)?)))
            .await
    }

    async fn record(&self, entity_set: &str, id: &str) -> StoreResult<Option<String>> {
        let sql = "SELECT body FROM api_records WHERE entity_set = $1 AND id = $2";
        self.one(sql, &[&entity_set, &id], |r| r.text(0)).await
    }

    async fn insert_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO api_records (entity_set, id, body) VALUES ($1, $2, $3)",
            &[&entity_set, &id, &json],
        )
        .await
        .map_err(|e| conflict_or_backend(e, id))?;
        Ok(())
    }

    async fn update_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<bool> {
        let sql = "UPDATE api_records SET body = $3 WHERE entity_set = $1 AND id = $2";
        Ok(self.run(sql, &[&entity_set, &id, &json]).await? > 0)
    }

    async fn delete_record(&self, entity_set: &str, id: &str) -> StoreResult<bool> {
        let sql = "DELETE FROM api_records WHERE entity_set = $1 AND id = $2";
        Ok(self.run(sql, &[&entity_set, &id]).await? > 0)
    }

    async fn enter_api_session(
        &self,
        candidate: &ApiSession,
        license: &License,
        now: u64,
    ) -> StoreResult<Option<ApiSession>> {
        let mut c = self.client().await?;
        // The common cases take no lock: a session already touched this
        // second needs no write at all, an open one a single update.
        let current = row(
            &c,
            &format!("SELECT {API_SESSION_COLUMNS} FROM api_sessions WHERE key = $1 AND expires_at > $2 AND last_seen >= $2"),
            &[&candidate.key, &to_i64(now)],
        )
        .await?;
        if let Some(r) = current {
            return Ok(Some(rows::api_session(&r)?));
        }
        if let Some(open) = Self::touch(&c, "key", &candidate.key, now).await? {
            return Ok(Some(open));
        }
        let tx = c.transaction().await.map_err(pg)?;
        lock(&tx, LOCK_LICENSE).await?;
        exec(
            &tx,
            "DELETE FROM api_sessions WHERE expires_at <= $1",
            &[&to_i64(now)],
        )
        .await?;
        // Another replica may have opened it while this one waited.
        if let Some(open) = Self::touch(&tx, "key", &candidate.key, now).await? {
            tx.commit().await.map_err(pg)?;
            return Ok(Some(open));
        }
        let live = all(
            &rows(
                &tx,
                &format!("SELECT {API_SESSION_COLUMNS} FROM api_sessions"),
                &[],
            )
            .await?,
            rows::api_session,
        )?;
        let Some(reserved) = license.admit(&live, candidate) else {
            tx.commit().await.map_err(pg)?;
            return Ok(None);
        };
        let session = ApiSession {
            reserved,
            ..candidate.clone()
        };
        exec(
            &tx,
            &format!("INSERT INTO api_sessions ({API_SESSION_COLUMNS}, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
            &[
                &session.key,
                &session.id,
                &session.login,
                &session.client_id,
                &session.origin.code(),
                &to_i64(session.opened_at),
                &to_i64(session.last_seen),
                &session.closes_at.map(to_i64),
                &session.reserved,
                &to_i64(session.expires_at()),
            ],
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(Some(session))
    }

    async fn resume_api_session(&self, id: &str, now: u64) -> StoreResult<Option<ApiSession>> {
        let c = self.client().await?;
        Self::touch(&c, "id", id, now).await
    }

    async fn close_api_session(&self, key_or_id: &str) -> StoreResult<bool> {
        let sql = "DELETE FROM api_sessions WHERE key = $1 OR id = $1";
        Ok(self.run(sql, &[&key_or_id]).await? > 0)
    }

    async fn api_sessions(&self, now: u64) -> StoreResult<Vec<ApiSession>> {
        let sql = format!(
            "SELECT {API_SESSION_COLUMNS} FROM api_sessions WHERE expires_at > $1 ORDER BY opened_at, id"
        );
        self.list(&sql, &[&to_i64(now)], rows::api_session).await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let insert =
            "INSERT INTO host_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        self.run(insert, &[&name, &candidate]).await?;
        let select = "SELECT value FROM host_secrets WHERE name = $1";
        self.one(select, &[&name], |r| r.text(0))
            .await?
            .ok_or_else(|| corrupt("host_secrets"))
    }

    async fn put_signin(&self, id: &str, json: &str, expires_at: u64) -> StoreResult<()> {
        let sql = "INSERT INTO pending_signins (id, body, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, expires_at = EXCLUDED.expires_at";
        self.run(sql, &[&id, &json, &to_i64(expires_at)])
            .await
            .map(drop)
    }

    async fn signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        let sql = "SELECT body FROM pending_signins WHERE id = $1 AND expires_at > $2";
        self.one(sql, &[&id, &to_i64(now)], |r| r.text(0)).await
    }

    async fn take_signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        let sql = "DELETE FROM pending_signins WHERE id = $1 RETURNING body, expires_at";
        let taken = self
            .one(sql, &[&id], |r| Ok((r.text(0)?, r.int(1)?)))
            .await?;
        Ok(taken.filter(|(_, e)| *e > now).map(|(body, _)| body))
    }

    async fn add_login_failure(&self, key: &str, now: u64, window_s: u64) -> StoreResult<u32> {
        let params: Params<'_> = &[&key, &to_i64(now), &to_i64(window_s)];
        let count = self
            .one(super::ADD_FAILURE_PG, params, |r| r.int(0))
            .await?
            .ok_or_else(|| corrupt("login_failures"))?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn login_failures(&self, key: &str, now: u64) -> StoreResult<u32> {
        let sql = "SELECT count FROM login_failures WHERE key = $1 AND expires_at > $2";
        let count = self.one(sql, &[&key, &to_i64(now)], |r| r.int(0)).await?;
        Ok(count.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        let sql = "DELETE FROM login_failures WHERE key = $1";
        self.run(sql, &[&key]).await.map(drop)
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> StoreResult<usize> {
        let c = self.client().await?;
        let mut total = 0;
        for table in super::EXPIRING_TABLES {
            // Rows another replica is deleting right now are skipped, not
            // waited for.
            let sql = format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))"
            );
            let n = exec(&c, &sql, &[&to_i64(now), &to_i64(batch as u64)]).await?;
            total += usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(total)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::PostgresStore;

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
        let name = format!("erpgate_test_{}", crate::secrets::random_hex(8).to_lowercase());
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
        super::super::conformance::run(&store).await;
        // Reconnecting runs no migration twice and keeps the data.
        drop(store);
        let again = PostgresStore::connect(&url).await.unwrap();
        use super::Store as _;
        assert_eq!(again.apps().await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_race() {
        let Some(url) = fresh_database().await else {
            return;
        };
        // Two pools racing their migrations, as replicas starting together.
        let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
        super::super::conformance::race(Arc::new(a.unwrap()), Arc::new(b.unwrap())).await;
    }
}

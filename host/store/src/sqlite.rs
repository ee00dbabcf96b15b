//! The embedded default: SQLite in WAL mode with `synchronous=FULL`, so a write
//! a response reports as done survives `kill -9` (and power loss). Reads spread
//! over a few connections; writes go through one, so they queue in-process
//! instead of spinning on SQLITE_BUSY. Other processes (the CLI) share the file.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use erpgate::revocation::RevocationKind;
use rusqlite::{Connection, Row, params};

use super::rows::{self, Columns};
use super::{
    API_SESSION_COLUMNS, APP_COLUMNS, BASIS_COLUMNS, CODE_COLUMNS, CONSENT_COLUMNS, FEED_COLUMNS,
    IDENTITY_SESSION_COLUMNS, KEY_COLUMNS, REFRESH_COLUMNS, Store, StoreError, StoreResult,
    TOKEN_COLUMNS, TokenContext, USER_COLUMNS, kind_name,
};
use crate::records::{
    ApiSession, AuthCode, Consent, FeedRow, IDLE_TIMEOUT_S, IdentitySession, License, Redemption,
    ReferenceToken, RefreshToken, SigningKeyRecord, TrustedApp, User,
};

const READERS: usize = 3;

type Shared = Arc<Mutex<Connection>>;

/// SQLite-backed store.
pub struct SqliteStore {
    writer: Shared,
    readers: Vec<Shared>,
    next: AtomicUsize,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn conflict_or_backend(e: rusqlite::Error, what: &str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what.to_owned())
        }
        other => backend(other),
    }
}

fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(backend)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let version: usize = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    // Signing keys order by rowid, which SQLite has anyway.
    let migrations = super::migrations("INTEGER PRIMARY KEY AUTOINCREMENT", "");
    for (i, sql) in migrations.iter().enumerate().skip(version) {
        tx.execute_batch(sql).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

/// Every row of a cached query, mapped.
fn all<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    params: P,
    map: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut s = c.prepare_cached(sql).map_err(backend)?;
    let mut rows = s.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(map(r)?);
    }
    Ok(out)
}

/// The first row of a cached query, if there is one, mapped.
fn one<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    params: P,
    map: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut s = c.prepare_cached(sql).map_err(backend)?;
    let mut rows = s.query(params).map_err(backend)?;
    rows.next().map_err(backend)?.map(map).transpose()
}

impl Columns for Row<'_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.get(i).map_err(backend)
    }

    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i).map_err(backend)
    }

    fn int(&self, i: usize) -> StoreResult<u64> {
        Ok(u64::try_from(self.get::<_, i64>(i).map_err(backend)?).unwrap_or(0))
    }

    fn opt_int(&self, i: usize) -> StoreResult<Option<u64>> {
        let v: Option<i64> = self.get(i).map_err(backend)?;
        Ok(v.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.get(i).map_err(backend)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores a refresh token unless its grant is revoked (one statement, so
/// atomic against a revocation); whether it was stored.
fn insert_refresh(tx: &Connection, t: &RefreshToken) -> StoreResult<bool> {
    let b = &t.basis;
    let stored = tx.execute(
        &format!("INSERT INTO refresh_tokens (hash, {BASIS_COLUMNS}, created_at, expires_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE NOT EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = ?2)"),
        params![t.hash, b.grant_id, b.client_id, b.login, b.sid, b.scopes.to_string(), to_i64(b.auth_time), to_i64(t.created_at), to_i64(t.expires_at)],
    )
    .map_err(|e| conflict_or_backend(e, "refresh token"))?;
    Ok(stored == 1)
}

/// Touches the live ERP session whose `which` (`key` or `id`) is `value`.
fn touch(c: &Connection, which: &str, value: &str, now: u64) -> StoreResult<Option<ApiSession>> {
    one(
        c,
        &format!(
            "UPDATE api_sessions SET last_seen = MAX(last_seen, ?2), \
             expires_at = MIN(MAX(last_seen, ?2) + ?3, COALESCE(closes_at, 9223372036854775807)) \
             WHERE {which} = ?1 AND expires_at > ?2 RETURNING {API_SESSION_COLUMNS}"
        ),
        params![value, to_i64(now), to_i64(IDLE_TIMEOUT_S)],
        |r| rows::api_session(r),
    )
}

impl SqliteStore {
    /// Opens (creating if needed) `erpgate.sqlite3` in `dir` and migrates it.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let path = dir.join("erpgate.sqlite3");
        let mut writer = open(&path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open(&path).map(|c| Arc::new(Mutex::new(c))))
            .collect::<StoreResult<_>>()?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers,
            next: AtomicUsize::new(0),
        })
    }

    async fn run<T, F>(conn: Shared, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }

    /// Reads run inline on the calling thread when a reader connection is free:
    /// a point read in WAL mode takes microseconds and never waits for a
    /// writer, so a thread hop would cost more than the query. When every
    /// reader is busy the read moves to the blocking pool.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let n = self.readers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if let Some(conn) = self.readers.get((start + k) % n)
                && let Ok(mut guard) = conn.try_lock()
            {
                return f(&mut guard);
            }
        }
        let conn = self
            .readers
            .get(start % n.max(1))
            .cloned()
            .unwrap_or_else(|| self.writer.clone());
        Self::run(conn, f).await
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        Self::run(self.writer.clone(), f).await
    }
}

fn push_feed(
    tx: &rusqlite::Transaction<'_>,
    kind: RevocationKind,
    value: &str,
    expires_at: u64,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO revocation_feed (kind, value, expires_at) VALUES (?1, ?2, ?3)",
        params![kind_name(kind), value, to_i64(expires_at)],
    )
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn app(&self, client_id: &str) -> StoreResult<Option<TrustedApp>> {
        let id = client_id.to_owned();
        self.read(move |c| {
            one(
                c,
                &format!("SELECT {APP_COLUMNS} FROM trusted_apps WHERE client_id = ?1"),
                [id],
                |r| rows::app(r, 0),
            )
        })
        .await
    }

    async fn apps(&self) -> StoreResult<Vec<TrustedApp>> {
        self.read(|c| {
            all(
                c,
                &format!("SELECT {APP_COLUMNS} FROM trusted_apps ORDER BY client_id"),
                [],
                |r| rows::app(r, 0),
            )
        })
        .await
    }

    async fn insert_app(&self, app: &TrustedApp) -> StoreResult<()> {
        let a = app.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO trusted_apps ({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                params![
                    a.client_id,
                    a.name,
                    a.client_type.code(),
                    a.secret_hash,
                    a.redirect_uris.join(","),
                    a.logout_uris.join(","),
                    a.internal_users_allowed,
                    a.community_users_allowed,
                    a.system_user_allowed,
                    a.system_user,
                    a.scope.to_string(),
                    a.reference_tokens.code(),
                    a.basic_auth_allowed,
                    a.enabled,
                    to_i64(a.created_at)
                ],
            )
            .map_err(|e| conflict_or_backend(e, &a.client_id))?;
            Ok(())
        })
        .await
    }

    async fn set_app_enabled(&self, client_id: &str, enabled: bool) -> StoreResult<bool> {
        let id = client_id.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let found = tx
                .execute(
                    "UPDATE trusted_apps SET enabled = ?2 WHERE client_id = ?1",
                    params![id, enabled],
                )
                .map_err(backend)?
                > 0;
            if found && !enabled {
                // Disabling an app ends its refresh tokens for good.
                tx.execute(
                    "UPDATE refresh_tokens SET dead_at = strftime('%s','now') WHERE client_id = ?1 AND dead_at IS NULL",
                    [&id],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(found)
        })
        .await
    }

    async fn set_app_secret_hash(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        let (id, hash) = (client_id.to_owned(), secret_hash.to_owned());
        self.write(move |c| {
            c.execute(
                "UPDATE trusted_apps SET secret_hash = ?2 WHERE client_id = ?1",
                params![id, hash],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn user(&self, login: &str) -> StoreResult<Option<User>> {
        let login = login.to_owned();
        self.read(move |c| {
            one(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users WHERE login = ?1"),
                [login],
                |r| rows::user(r, 0),
            )
        })
        .await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.read(|c| {
            all(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY login"),
                [],
                |r| rows::user(r, 0),
            )
        })
        .await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.write(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    u.login,
                    u.id,
                    u.name,
                    u.email,
                    u.user_type,
                    u.is_admin,
                    u.locale,
                    u.password_hash
                ],
            )
            .map_err(|e| conflict_or_backend(e, &u.login))?;
            Ok(())
        })
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.read(|c| {
            all(
                c,
                &format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, rowid DESC"
                ),
                [],
                |r| rows::signing_key(r),
            )
        })
        .await
    }

    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let k = key.clone();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let count: i64 = tx.query_row("SELECT COUNT(*) FROM signing_keys", [], |r| r.get(0)).map_err(backend)?;
            if count > 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO signing_keys (kid, private_pem, created_at, retire_at) VALUES (?1, ?2, ?3, NULL)",
                params![k.kid, k.private_pem, to_i64(k.created_at)],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        retire_old_at: u64,
    ) -> StoreResult<()> {
        let k = key.clone();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            tx.execute("UPDATE signing_keys SET retire_at = ?1 WHERE retire_at IS NULL", [to_i64(retire_old_at)])
                .map_err(backend)?;
            tx.execute(
                "INSERT INTO signing_keys (kid, private_pem, created_at, retire_at) VALUES (?1, ?2, ?3, NULL)",
                params![k.kid, k.private_pem, to_i64(k.created_at)],
            )
            .map_err(|e| conflict_or_backend(e, &k.kid))?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn insert_reference_token(&self, token: &ReferenceToken) -> StoreResult<()> {
        let t = token.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO reference_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    t.hash,
                    t.id,
                    t.kind.as_str(),
                    t.client_id,
                    t.subject,
                    t.scopes.to_string(),
                    t.description,
                    t.creator,
                    to_i64(t.created_at),
                    to_i64(t.expires_at),
                    t.last_used_at.map(to_i64),
                    t.revoked_at.map(to_i64)
                ],
            )
            .map_err(|e| conflict_or_backend(e, &t.id))?;
            Ok(())
        })
        .await
    }

    async fn reference_token(&self, hash: &str) -> StoreResult<Option<ReferenceToken>> {
        let hash = hash.to_owned();
        self.read(move |c| {
            one(
                c,
                &format!("SELECT {TOKEN_COLUMNS} FROM reference_tokens WHERE hash = ?1"),
                [hash],
                |r| rows::token(r),
            )
        })
        .await
    }

    async fn reference_token_context(&self, hash: &str) -> StoreResult<Option<TokenContext>> {
        let hash = hash.to_owned();
        self.read(move |c| {
            one(c, &super::TOKEN_CONTEXT_SQLITE, [hash], |r| {
                rows::token_context(r)
            })
        })
        .await
    }

    async fn reference_tokens(&self) -> StoreResult<Vec<ReferenceToken>> {
        self.read(|c| {
            all(
                c,
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM reference_tokens ORDER BY created_at DESC, id"
                ),
                [],
                |r| rows::token(r),
            )
        })
        .await
    }

    async fn revoke_reference_token(
        &self,
        hash_or_id: &str,
        now: u64,
    ) -> StoreResult<Option<ReferenceToken>> {
        let key = hash_or_id.to_owned();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let found = one(&tx, &format!("SELECT {TOKEN_COLUMNS} FROM reference_tokens WHERE (hash = ?1 OR id = ?1) AND revoked_at IS NULL"), [&key], |r| rows::token(r))?;
            let Some(mut token) = found else { return Ok(None) };
            tx.execute("UPDATE reference_tokens SET revoked_at = ?2 WHERE hash = ?1", params![token.hash, to_i64(now)])
                .map_err(backend)?;
            push_feed(&tx, RevocationKind::TokenSha256, &token.hash, token.expires_at)?;
            tx.commit().map_err(backend)?;
            token.revoked_at = Some(now);
            Ok(Some(token))
        })
        .await
    }

    async fn record_token_use(&self, uses: &[(String, u64)]) -> StoreResult<()> {
        let uses = uses.to_vec();
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for (hash, at) in &uses {
                tx.execute(
                    "UPDATE reference_tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE hash = ?1",
                    params![hash, to_i64(*at)],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn revoke_jti(&self, jti: &str, expires_at: u64, _now: u64) -> StoreResult<bool> {
        let jti = jti.to_owned();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO revoked_jti (jti, expires_at) VALUES (?1, ?2)",
                    params![jti, to_i64(expires_at)],
                )
                .map_err(backend)?;
            if inserted == 0 {
                return Ok(false);
            }
            push_feed(&tx, RevocationKind::Jti, &jti, expires_at)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        let jti = jti.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM revoked_jti WHERE jti = ?1")
                .and_then(|mut s| s.exists([jti]))
                .map_err(backend)
        })
        .await
    }

    async fn feed(&self, cursor: u64, limit: usize) -> StoreResult<Vec<FeedRow>> {
        self.read(move |c| {
            all(
                c,
                &format!("SELECT {FEED_COLUMNS} FROM revocation_feed WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
                params![to_i64(cursor), to_i64(limit as u64)],
                |r| rows::feed_row(r),
            )
        })
        .await
    }

    async fn insert_session(&self, session: &IdentitySession) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO identity_sessions (sid, login, auth_time, created_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.sid, s.login, to_i64(s.auth_time), to_i64(s.created_at), s.ended_at.map(to_i64)],
            )
            .map_err(|e| conflict_or_backend(e, &s.sid))?;
            Ok(())
        })
        .await
    }

    async fn session(&self, sid: &str) -> StoreResult<Option<IdentitySession>> {
        let sid = sid.to_owned();
        self.read(move |c| {
            one(
                c,
                &format!("SELECT {IDENTITY_SESSION_COLUMNS} FROM identity_sessions WHERE sid = ?1"),
                [sid],
                |r| rows::identity_session(r),
            )
        })
        .await
    }

    async fn end_session(&self, sid: &str, now: u64, event_expires_at: u64) -> StoreResult<bool> {
        let sid = sid.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let ended = tx
                .execute(
                    "UPDATE identity_sessions SET ended_at = ?2 WHERE sid = ?1 AND ended_at IS NULL",
                    params![sid, to_i64(now)],
                )
                .map_err(backend)?;
            if ended == 0 {
                return Ok(false);
            }
            tx.execute(
                "UPDATE refresh_tokens SET dead_at = ?2 WHERE sid = ?1 AND dead_at IS NULL",
                params![sid, to_i64(now)],
            )
            .map_err(backend)?;
            push_feed(&tx, RevocationKind::Sid, &sid, event_expires_at)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()> {
        let code = code.clone();
        self.write(move |c| {
            let b = &code.basis;
            c.execute(
                &format!("INSERT INTO auth_codes (hash, {BASIS_COLUMNS}, redirect_uri, code_challenge, nonce, state, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                params![code.hash, b.grant_id, b.client_id, b.login, b.sid, b.scopes.to_string(), to_i64(b.auth_time), code.redirect_uri, code.code_challenge, code.nonce, code.state, to_i64(code.created_at), to_i64(code.expires_at)],
            )
            .map_err(|e| conflict_or_backend(e, "authorization code"))?;
            Ok(())
        })
        .await
    }

    async fn redeem_auth_code(&self, hash: &str, now: u64) -> StoreResult<Redemption<AuthCode>> {
        let hash = hash.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let consumed = tx
                .execute(
                    "UPDATE auth_codes SET consumed_at = ?2 WHERE hash = ?1 AND consumed_at IS NULL",
                    params![hash, to_i64(now)],
                )
                .map_err(backend)?;
            let code = one(&tx, &format!("SELECT {CODE_COLUMNS} FROM auth_codes WHERE hash = ?1"), [&hash], |r| rows::code(r))?;
            tx.commit().map_err(backend)?;
            Ok(match code {
                None => Redemption::Unknown,
                Some(code) if consumed == 1 => Redemption::Fresh(code),
                Some(code) => Redemption::Replayed(code),
            })
        })
        .await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<bool> {
        let token = token.clone();
        self.write(move |c| insert_refresh(c, &token)).await
    }

    async fn rotate_refresh_token(
        &self,
        hash: &str,
        next_hash: &str,
        now: u64,
    ) -> StoreResult<Redemption<RefreshToken>> {
        let (hash, next_hash) = (hash.to_owned(), next_hash.to_owned());
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let consumed = tx
                .execute(
                    "UPDATE refresh_tokens SET dead_at = ?2 WHERE hash = ?1 AND dead_at IS NULL",
                    params![hash, to_i64(now)],
                )
                .map_err(backend)?;
            let old = one(
                &tx,
                &format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE hash = ?1"),
                [&hash],
                |r| rows::refresh(r),
            )?;
            let outcome = match old {
                None => Redemption::Unknown,
                Some(old) if consumed == 1 => {
                    let next = RefreshToken {
                        hash: next_hash,
                        created_at: now,
                        ..old.clone()
                    };
                    insert_refresh(&tx, &next)?;
                    Redemption::Fresh(old)
                }
                Some(old) => Redemption::Replayed(old),
            };
            tx.commit().map_err(backend)?;
            Ok(outcome)
        })
        .await
    }

    async fn record_grant_jti(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> StoreResult<bool> {
        let (grant, jti) = (grant_id.to_owned(), jti.to_owned());
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let revoked = tx
                .prepare_cached("SELECT 1 FROM revoked_grants WHERE grant_id = ?1")
                .and_then(|mut s| s.exists([&grant]))
                .map_err(backend)?;
            if revoked {
                let added = tx
                    .execute(
                        "INSERT OR IGNORE INTO revoked_jti (jti, expires_at) VALUES (?1, ?2)",
                        params![jti, to_i64(expires_at)],
                    )
                    .map_err(backend)?;
                if added == 1 {
                    push_feed(&tx, RevocationKind::Jti, &jti, expires_at)?;
                }
            } else {
                tx.execute(
                    "INSERT OR IGNORE INTO grant_jtis (grant_id, jti, expires_at) VALUES (?1, ?2, ?3)",
                    params![grant, jti, to_i64(expires_at)],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(!revoked)
        })
        .await
    }

    async fn revoke_grant(&self, grant_id: &str, now: u64) -> StoreResult<usize> {
        let grant = grant_id.to_owned();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            tx.execute(
                "INSERT OR IGNORE INTO revoked_grants (grant_id, expires_at) VALUES (?1, ?2)",
                params![grant, to_i64(now.saturating_add(super::REVOKED_GRANT_KEPT_S))],
            )
            .map_err(backend)?;
            let mut count = tx
                .execute(
                    "UPDATE refresh_tokens SET dead_at = ?2 WHERE grant_id = ?1 AND dead_at IS NULL",
                    params![grant, to_i64(now)],
                )
                .map_err(backend)?;
            let jtis: Vec<(String, u64)> = all(
                &tx,
                "SELECT jti, expires_at FROM grant_jtis WHERE grant_id = ?1 AND expires_at > ?2",
                params![grant, to_i64(now)],
                |r| Ok((r.text(0)?, r.int(1)?)),
            )?;
            for (jti, expires_at) in jtis {
                let added = tx
                    .execute(
                        "INSERT OR IGNORE INTO revoked_jti (jti, expires_at) VALUES (?1, ?2)",
                        params![jti, to_i64(expires_at)],
                    )
                    .map_err(backend)?;
                if added == 1 {
                    push_feed(&tx, RevocationKind::Jti, &jti, expires_at)?;
                    count += 1;
                }
            }
            tx.execute("DELETE FROM grant_jtis WHERE grant_id = ?1", [&grant])
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(count)
        })
        .await
    }

    async fn set_password_hash(&self, login: &str, hash: &str, now: u64) -> StoreResult<bool> {
        let (login, hash) = (login.to_owned(), hash.to_owned());
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let changed = tx
                .execute(
                    "UPDATE users SET password_hash = ?2 WHERE login = ?1",
                    params![login, hash],
                )
                .map_err(backend)?;
            tx.execute(
                "UPDATE refresh_tokens SET dead_at = ?2 WHERE login = ?1 AND dead_at IS NULL",
                params![login, to_i64(now)],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn consent(&self, login: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        let (login, client) = (login.to_owned(), client_id.to_owned());
        self.read(move |c| {
            one(
                c,
                &format!(
                    "SELECT {CONSENT_COLUMNS} FROM consents WHERE login = ?1 AND client_id = ?2"
                ),
                params![login, client],
                |r| rows::consent(r),
            )
        })
        .await
    }

    async fn consents_of(&self, login: &str) -> StoreResult<Vec<Consent>> {
        let login = login.to_owned();
        self.read(move |c| {
            all(
                c,
                &format!(
                    "SELECT {CONSENT_COLUMNS} FROM consents WHERE login = ?1 ORDER BY client_id"
                ),
                [login],
                |r| rows::consent(r),
            )
        })
        .await
    }

    async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
        let c2 = consent.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO consents (login, client_id, scopes, granted_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (login, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
                params![c2.login, c2.client_id, c2.scopes.to_string(), to_i64(c2.granted_at)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn revoke_consent(&self, login: &str, client_id: &str, _now: u64) -> StoreResult<bool> {
        let (login, client) = (login.to_owned(), client_id.to_owned());
        self.write(move |c| {
            c.execute(
                "DELETE FROM consents WHERE login = ?1 AND client_id = ?2",
                params![login, client],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn records(&self, entity_set: &str) -> StoreResult<Vec<(String, String)>> {
        let set = entity_set.to_owned();
        self.read(move |c| {
            all(
                c,
                "SELECT id, body FROM api_records WHERE entity_set = ?1 ORDER BY id",
                [set],
                |r| Ok((r.text(0)?, r.text(1)?)),
            )
        })
        .await
    }

    async fn record(&self, entity_set: &str, id: &str) -> StoreResult<Option<String>> {
        let (set, id) = (entity_set.to_owned(), id.to_owned());
        self.read(move |c| {
            one(
                c,
                "SELECT body FROM api_records WHERE entity_set = ?1 AND id = ?2",
                params![set, id],
                |r| r.text(0),
            )
        })
        .await
    }

    async fn insert_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<()> {
        let (set, id, body) = (entity_set.to_owned(), id.to_owned(), json.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_records (entity_set, id, body) VALUES (?1, ?2, ?3)",
                params![set, id, body],
            )
            .map_err(|e| conflict_or_backend(e, &id))?;
            Ok(())
        })
        .await
    }

    async fn update_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<bool> {
        let (set, id, body) = (entity_set.to_owned(), id.to_owned(), json.to_owned());
        self.write(move |c| {
            c.execute(
                "UPDATE api_records SET body = ?3 WHERE entity_set = ?1 AND id = ?2",
                params![set, id, body],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn delete_record(&self, entity_set: &str, id: &str) -> StoreResult<bool> {
        let (set, id) = (entity_set.to_owned(), id.to_owned());
        self.write(move |c| {
            c.execute(
                "DELETE FROM api_records WHERE entity_set = ?1 AND id = ?2",
                params![set, id],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn enter_api_session(
        &self,
        candidate: &ApiSession,
        license: &License,
        now: u64,
    ) -> StoreResult<Option<ApiSession>> {
        // A session already touched this second needs no write (and no
        // fsync): the common case under load.
        let key = candidate.key.clone();
        let current = self
            .read(move |c| {
                one(
                    c,
                    &format!("SELECT {API_SESSION_COLUMNS} FROM api_sessions WHERE key = ?1 AND expires_at > ?2 AND last_seen >= ?2"),
                    params![key, to_i64(now)],
                    |r| rows::api_session(r),
                )
            })
            .await?;
        if current.is_some() {
            return Ok(current);
        }
        let (candidate, license) = (candidate.clone(), license.clone());
        self.write(move |c| {
            // IMMEDIATE: other processes on the file wait, so counting and
            // taking a slot are one step.
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            tx.execute(
                "DELETE FROM api_sessions WHERE expires_at <= ?1",
                [to_i64(now)],
            )
            .map_err(backend)?;
            if let Some(open) = touch(&tx, "key", &candidate.key, now)? {
                tx.commit().map_err(backend)?;
                return Ok(Some(open));
            }
            let live = all(
                &tx,
                &format!("SELECT {API_SESSION_COLUMNS} FROM api_sessions"),
                [],
                |r| rows::api_session(r),
            )?;
            let Some(reserved) = license.admit(&live, &candidate) else {
                tx.commit().map_err(backend)?;
                return Ok(None);
            };
            let s = ApiSession {
                reserved,
                ..candidate
            };
            tx.execute(
                &format!("INSERT INTO api_sessions ({API_SESSION_COLUMNS}, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    s.key,
                    s.id,
                    s.login,
                    s.client_id,
                    s.origin.code(),
                    to_i64(s.opened_at),
                    to_i64(s.last_seen),
                    s.closes_at.map(to_i64),
                    s.reserved,
                    to_i64(s.expires_at())
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(Some(s))
        })
        .await
    }

    async fn resume_api_session(&self, id: &str, now: u64) -> StoreResult<Option<ApiSession>> {
        let id = id.to_owned();
        self.write(move |c| touch(c, "id", &id, now)).await
    }

    async fn close_api_session(&self, key_or_id: &str) -> StoreResult<bool> {
        let key = key_or_id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM api_sessions WHERE key = ?1 OR id = ?1", [key])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn api_sessions(&self, now: u64) -> StoreResult<Vec<ApiSession>> {
        self.read(move |c| {
            all(
                c,
                &format!("SELECT {API_SESSION_COLUMNS} FROM api_sessions WHERE expires_at > ?1 ORDER BY opened_at, id"),
                [to_i64(now)],
                |r| rows::api_session(r),
            )
        })
        .await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO host_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, candidate],
            )
            .map_err(backend)?;
            one(c, "SELECT value FROM host_secrets WHERE name = ?1", [&name], |r| r.text(0))?
                .ok_or_else(|| StoreError::Corrupt("host_secrets".into()))
        })
        .await
    }

    async fn put_signin(&self, id: &str, json: &str, expires_at: u64) -> StoreResult<()> {
        let (id, body) = (id.to_owned(), json.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO pending_signins (id, body, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
                params![id, body, to_i64(expires_at)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        let id = id.to_owned();
        self.read(move |c| {
            one(
                c,
                "SELECT body FROM pending_signins WHERE id = ?1 AND expires_at > ?2",
                params![id, to_i64(now)],
                |r| r.text(0),
            )
        })
        .await
    }

    async fn take_signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        let id = id.to_owned();
        self.write(move |c| {
            let taken = one(
                c,
                "DELETE FROM pending_signins WHERE id = ?1 RETURNING body, expires_at",
                [id],
                |r| Ok((r.text(0)?, r.int(1)?)),
            )?;
            Ok(taken.filter(|(_, e)| *e > now).map(|(body, _)| body))
        })
        .await
    }

    async fn add_login_failure(&self, key: &str, now: u64, window_s: u64) -> StoreResult<u32> {
        let key = key.to_owned();
        self.write(move |c| {
            let count: i64 = c
                .prepare_cached(&super::ADD_FAILURE_PG.replace('$', "?"))
                .and_then(|mut s| {
                    s.query_row(params![key, to_i64(now), to_i64(window_s)], |r| r.get(0))
                })
                .map_err(backend)?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn login_failures(&self, key: &str, now: u64) -> StoreResult<u32> {
        let key = key.to_owned();
        self.read(move |c| {
            let count = one(
                c,
                "SELECT count FROM login_failures WHERE key = ?1 AND expires_at > ?2",
                params![key, to_i64(now)],
                |r| r.int(0),
            )?;
            Ok(count.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
        })
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM login_failures WHERE key = ?1", [key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> StoreResult<usize> {
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let mut total = 0;
            for table in super::EXPIRING_TABLES {
                total += tx
                    .execute(
                        &format!("DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE expires_at < ?1 LIMIT ?2)"),
                        params![to_i64(now), to_i64(batch as u64)],
                    )
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(total)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(dir.path()).unwrap();
        super::super::conformance::run(&store).await;
        // Reopening runs no migration twice and keeps the data.
        drop(store);
        let again = super::SqliteStore::open(dir.path()).unwrap();
        use super::Store as _;
        assert_eq!(again.apps().await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_processes_race() {
        // Two stores on one file, as the host and the CLI (or two hosts).
        let dir = tempfile::tempdir().unwrap();
        let a = super::SqliteStore::open(dir.path()).unwrap();
        let b = super::SqliteStore::open(dir.path()).unwrap();
        super::super::conformance::race(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
    }
}

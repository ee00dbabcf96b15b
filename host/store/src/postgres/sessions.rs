//! Identity sessions, licensed ERP API sessions, pending sign-ins and login
//! failures.

use deadpool_postgres::GenericClient;
use erpgate::revocation::RevocationKind;

use super::conn::{
    LOCK_LICENSE, Params, PostgresStore, all, conflict_or_backend, corrupt, exec, lock, pg, row,
    rows, to_i64,
};
use super::revocation::push_feed;
use crate::records::{ApiSession, IDLE_TIMEOUT_S, IdentitySession, License};
use crate::rows::{self, Columns};
use crate::{API_SESSION_COLUMNS, IDENTITY_SESSION_COLUMNS, StoreResult};

/// Touches the live session of a key or id: the same SQL at the fast path
/// and under the license lock.
const TOUCH: &str = "UPDATE api_sessions SET last_seen = GREATEST(last_seen, $2), \
     expires_at = LEAST(GREATEST(last_seen, $2) + $3, COALESCE(closes_at, 9223372036854775807)) \
     WHERE {which} = $1 AND expires_at > $2 RETURNING key, id, login, client_id, origin, opened_at, last_seen, closes_at, reserved";

/// Touches the live session whose `which` (`key` or `id`) is `value`.
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

pub(super) async fn insert_session(store: &PostgresStore, s: &IdentitySession) -> StoreResult<()> {
    let c = store.client().await?;
    c.execute(
        "INSERT INTO identity_sessions (sid, login, auth_time, created_at, ended_at) VALUES ($1, $2, $3, $4, $5)",
        &[&s.sid, &s.login, &to_i64(s.auth_time), &to_i64(s.created_at), &s.ended_at.map(to_i64)],
    )
    .await
    .map_err(|e| conflict_or_backend(e, &s.sid))?;
    Ok(())
}

pub(super) async fn expired_sessions(
    store: &PostgresStore,
    auth_before: u64,
    limit: usize,
) -> StoreResult<Vec<String>> {
    let sql = "SELECT sid FROM identity_sessions WHERE ended_at IS NULL AND auth_time < $1 ORDER BY auth_time, sid LIMIT $2";
    store
        .list(sql, &[&to_i64(auth_before), &to_i64(limit as u64)], |r| {
            r.try_get::<_, String>(0).map_err(pg)
        })
        .await
}

pub(super) async fn session(
    store: &PostgresStore,
    sid: &str,
) -> StoreResult<Option<IdentitySession>> {
    let sql = format!("SELECT {IDENTITY_SESSION_COLUMNS} FROM identity_sessions WHERE sid = $1");
    store.one(&sql, &[&sid], rows::identity_session).await
}

pub(super) async fn reauthenticate_session(
    store: &PostgresStore,
    sid: &str,
    auth_time: u64,
) -> StoreResult<bool> {
    let sql = "UPDATE identity_sessions SET auth_time = $2 WHERE sid = $1 AND ended_at IS NULL";
    Ok(store.run(sql, &[&sid, &to_i64(auth_time)]).await? == 1)
}

pub(super) async fn end_session(
    store: &PostgresStore,
    sid: &str,
    now: u64,
    event_expires_at: u64,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
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

pub(super) async fn enter_api_session(
    store: &PostgresStore,
    candidate: &ApiSession,
    license: &License,
    now: u64,
) -> StoreResult<Option<ApiSession>> {
    let mut c = store.client().await?;
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
    if let Some(open) = touch(&c, "key", &candidate.key, now).await? {
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
    if let Some(open) = touch(&tx, "key", &candidate.key, now).await? {
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

pub(super) async fn resume_api_session(
    store: &PostgresStore,
    id: &str,
    now: u64,
) -> StoreResult<Option<ApiSession>> {
    let c = store.client().await?;
    touch(&c, "id", id, now).await
}

pub(super) async fn close_api_session(store: &PostgresStore, key_or_id: &str) -> StoreResult<bool> {
    let sql = "DELETE FROM api_sessions WHERE key = $1 OR id = $1";
    Ok(store.run(sql, &[&key_or_id]).await? > 0)
}

pub(super) async fn api_sessions(store: &PostgresStore, now: u64) -> StoreResult<Vec<ApiSession>> {
    let sql = format!(
        "SELECT {API_SESSION_COLUMNS} FROM api_sessions WHERE expires_at > $1 ORDER BY opened_at, id"
    );
    store.list(&sql, &[&to_i64(now)], rows::api_session).await
}

pub(super) async fn put_signin(
    store: &PostgresStore,
    id: &str,
    json: &str,
    expires_at: u64,
) -> StoreResult<()> {
    let sql = "INSERT INTO pending_signins (id, body, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, expires_at = EXCLUDED.expires_at";
    store
        .run(sql, &[&id, &json, &to_i64(expires_at)])
        .await
        .map(drop)
}

pub(super) async fn signin(
    store: &PostgresStore,
    id: &str,
    now: u64,
) -> StoreResult<Option<String>> {
    let sql = "SELECT body FROM pending_signins WHERE id = $1 AND expires_at > $2";
    store.one(sql, &[&id, &to_i64(now)], |r| r.text(0)).await
}

pub(super) async fn take_signin(
    store: &PostgresStore,
    id: &str,
    now: u64,
) -> StoreResult<Option<String>> {
    let sql = "DELETE FROM pending_signins WHERE id = $1 RETURNING body, expires_at";
    let taken = store
        .one(sql, &[&id], |r| Ok((r.text(0)?, r.int(1)?)))
        .await?;
    Ok(taken.filter(|(_, e)| *e > now).map(|(body, _)| body))
}

pub(super) async fn add_login_failure(
    store: &PostgresStore,
    key: &str,
    now: u64,
    window_s: u64,
) -> StoreResult<u32> {
    let params: Params<'_> = &[&key, &to_i64(now), &to_i64(window_s)];
    let count = store
        .one(crate::ADD_FAILURE_PG, params, |r| r.int(0))
        .await?
        .ok_or_else(|| corrupt("login_failures"))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

pub(super) async fn login_failures(store: &PostgresStore, key: &str, now: u64) -> StoreResult<u32> {
    let sql = "SELECT count FROM login_failures WHERE key = $1 AND expires_at > $2";
    let count = store.one(sql, &[&key, &to_i64(now)], |r| r.int(0)).await?;
    Ok(count.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
}

pub(super) async fn clear_login_failures(store: &PostgresStore, key: &str) -> StoreResult<()> {
    let sql = "DELETE FROM login_failures WHERE key = $1";
    store.run(sql, &[&key]).await.map(drop)
}

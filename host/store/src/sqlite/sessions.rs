//! Identity sessions, licensed ERP API sessions, pending sign-ins and login
//! failures.

use erpgate::revocation::RevocationKind;
use rusqlite::{Connection, params};

use super::conn::{SqliteStore, all, backend, conflict_or_backend, one, to_i64};
use super::revocation::push_feed;
use crate::records::{ApiSession, IDLE_TIMEOUT_S, IdentitySession, License};
use crate::rows::{self, Columns};
use crate::{API_SESSION_COLUMNS, IDENTITY_SESSION_COLUMNS, StoreResult};

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

pub(super) async fn insert_session(
    store: &SqliteStore,
    session: &IdentitySession,
) -> StoreResult<()> {
    let s = session.clone();
    store.write(move |c| {
        c.execute(
            "INSERT INTO identity_sessions (sid, login, auth_time, created_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.sid, s.login, to_i64(s.auth_time), to_i64(s.created_at), s.ended_at.map(to_i64)],
        )
        .map_err(|e| conflict_or_backend(e, &s.sid))?;
        Ok(())
    })
    .await
}

pub(super) async fn expired_sessions(
    store: &SqliteStore,
    auth_before: u64,
    limit: usize,
) -> StoreResult<Vec<String>> {
    store
        .read(move |c| {
            all(
                c,
                "SELECT sid FROM identity_sessions WHERE ended_at IS NULL AND auth_time < ?1 ORDER BY auth_time, sid LIMIT ?2",
                params![to_i64(auth_before), to_i64(limit as u64)],
                |r| r.get::<_, String>(0).map_err(backend),
            )
        })
        .await
}

pub(super) async fn session(
    store: &SqliteStore,
    sid: &str,
) -> StoreResult<Option<IdentitySession>> {
    let sid = sid.to_owned();
    store
        .read(move |c| {
            one(
                c,
                &format!("SELECT {IDENTITY_SESSION_COLUMNS} FROM identity_sessions WHERE sid = ?1"),
                [sid],
                |r| rows::identity_session(r),
            )
        })
        .await
}

pub(super) async fn reauthenticate_session(
    store: &SqliteStore,
    sid: &str,
    auth_time: u64,
) -> StoreResult<bool> {
    let sid = sid.to_owned();
    store
        .write(move |c| {
            let changed = c
                .execute(
                    "UPDATE identity_sessions SET auth_time = ?2 WHERE sid = ?1 AND ended_at IS NULL",
                    params![sid, to_i64(auth_time)],
                )
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
}

pub(super) async fn end_session(
    store: &SqliteStore,
    sid: &str,
    now: u64,
    event_expires_at: u64,
) -> StoreResult<bool> {
    let sid = sid.to_owned();
    store
        .write(move |c| {
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

pub(super) async fn enter_api_session(
    store: &SqliteStore,
    candidate: &ApiSession,
    license: &License,
    now: u64,
) -> StoreResult<Option<ApiSession>> {
    // A session already touched this second needs no write (and no
    // fsync): the common case under load.
    let key = candidate.key.clone();
    let current = store
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
    store.write(move |c| {
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

pub(super) async fn resume_api_session(
    store: &SqliteStore,
    id: &str,
    now: u64,
) -> StoreResult<Option<ApiSession>> {
    let id = id.to_owned();
    // Read first: an id that names no live session takes no write lock.
    let probe = id.clone();
    let live = store
        .read(move |c| {
            one(
                c,
                "SELECT id FROM api_sessions WHERE id = ?1 AND expires_at > ?2",
                params![probe, to_i64(now)],
                |r| r.get::<_, String>(0).map_err(backend),
            )
        })
        .await?;
    if live.is_none() {
        return Ok(None);
    }
    store.write(move |c| touch(c, "id", &id, now)).await
}

pub(super) async fn close_api_session(store: &SqliteStore, key_or_id: &str) -> StoreResult<bool> {
    let key = key_or_id.to_owned();
    store
        .write(move |c| {
            c.execute("DELETE FROM api_sessions WHERE key = ?1 OR id = ?1", [key])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
}

pub(super) async fn api_sessions(store: &SqliteStore, now: u64) -> StoreResult<Vec<ApiSession>> {
    store.read(move |c| {
        all(
            c,
            &format!("SELECT {API_SESSION_COLUMNS} FROM api_sessions WHERE expires_at > ?1 ORDER BY opened_at, id"),
            [to_i64(now)],
            |r| rows::api_session(r),
        )
    })
    .await
}

pub(super) async fn put_signin(
    store: &SqliteStore,
    id: &str,
    json: &str,
    expires_at: u64,
) -> StoreResult<()> {
    let (id, body) = (id.to_owned(), json.to_owned());
    store.write(move |c| {
        c.execute(
            "INSERT INTO pending_signins (id, body, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
            params![id, body, to_i64(expires_at)],
        )
        .map_err(backend)?;
        Ok(())
    })
    .await
}

pub(super) async fn signin(store: &SqliteStore, id: &str, now: u64) -> StoreResult<Option<String>> {
    let id = id.to_owned();
    store
        .read(move |c| {
            one(
                c,
                "SELECT body FROM pending_signins WHERE id = ?1 AND expires_at > ?2",
                params![id, to_i64(now)],
                |r| r.text(0),
            )
        })
        .await
}

pub(super) async fn take_signin(
    store: &SqliteStore,
    id: &str,
    now: u64,
) -> StoreResult<Option<String>> {
    let id = id.to_owned();
    store
        .write(move |c| {
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

pub(super) async fn add_login_failure(
    store: &SqliteStore,
    key: &str,
    now: u64,
    window_s: u64,
) -> StoreResult<u32> {
    let key = key.to_owned();
    store
        .write(move |c| {
            let count: i64 = c
                .prepare_cached(&crate::ADD_FAILURE_PG.replace('$', "?"))
                .and_then(|mut s| {
                    s.query_row(params![key, to_i64(now), to_i64(window_s)], |r| r.get(0))
                })
                .map_err(backend)?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
        .await
}

pub(super) async fn login_failures(store: &SqliteStore, key: &str, now: u64) -> StoreResult<u32> {
    let key = key.to_owned();
    store
        .read(move |c| {
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

pub(super) async fn clear_login_failures(store: &SqliteStore, key: &str) -> StoreResult<()> {
    let key = key.to_owned();
    store
        .write(move |c| {
            c.execute("DELETE FROM login_failures WHERE key = ?1", [key])
                .map_err(backend)?;
            Ok(())
        })
        .await
}

//! Revoked `jti`s, the revocation feed, and the cleanup of expired rows.

use erpgate::revocation::{RevocationEvent, RevocationKind};
use rusqlite::params;

use super::conn::{SqliteStore, all, backend, to_i64};
use crate::records::FeedRow;
use crate::rows;
use crate::{FEED_COLUMNS, StoreResult};

pub(super) fn push_feed(
    tx: &rusqlite::Transaction<'_>,
    kind: RevocationKind,
    value: &str,
    expires_at: u64,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO revocation_feed (kind, value, expires_at) VALUES (?1, ?2, ?3)",
        params![crate::kind_name(kind), value, to_i64(expires_at)],
    )
    .map_err(backend)?;
    Ok(())
}

pub(super) async fn publish(store: &SqliteStore, event: &RevocationEvent) -> StoreResult<()> {
    let event = event.clone();
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO revocation_feed (kind, value, expires_at, issued_before) VALUES (?1, ?2, ?3, ?4)",
                params![
                    crate::kind_name(event.kind),
                    event.value,
                    to_i64(event.expires_at),
                    event.issued_before.map(to_i64)
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn revoke_jti(
    store: &SqliteStore,
    jti: &str,
    expires_at: u64,
) -> StoreResult<bool> {
    let jti = jti.to_owned();
    store
        .write(move |c| {
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

pub(super) async fn jti_revoked(store: &SqliteStore, jti: &str) -> StoreResult<bool> {
    let jti = jti.to_owned();
    store
        .read(move |c| {
            c.prepare_cached("SELECT 1 FROM revoked_jti WHERE jti = ?1")
                .and_then(|mut s| s.exists([jti]))
                .map_err(backend)
        })
        .await
}

pub(super) async fn feed(
    store: &SqliteStore,
    cursor: u64,
    limit: usize,
) -> StoreResult<Vec<FeedRow>> {
    store.read(move |c| {
        all(
            c,
            &format!("SELECT {FEED_COLUMNS} FROM revocation_feed WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
            params![to_i64(cursor), to_i64(limit as u64)],
            |r| rows::feed_row(r),
        )
    })
    .await
}

pub(super) async fn purge_expired(
    store: &SqliteStore,
    now: u64,
    batch: usize,
) -> StoreResult<usize> {
    store.write(move |c| {
        let tx = c.transaction().map_err(backend)?;
        let mut total = 0;
        for table in crate::EXPIRING_TABLES {
            total += tx
                .execute(
                    &format!("DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE expires_at < ?1 LIMIT ?2)"),
                    params![to_i64(now), to_i64(batch as u64)],
                )
                .map_err(backend)?;
        }
        total += tx
            .execute(
                "DELETE FROM identity_sessions WHERE rowid IN (SELECT rowid FROM identity_sessions WHERE ended_at < ?1 LIMIT ?2)",
                params![
                    to_i64(now.saturating_sub(crate::ENDED_SESSION_KEEP_S)),
                    to_i64(batch as u64)
                ],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(total)
    })
    .await
}

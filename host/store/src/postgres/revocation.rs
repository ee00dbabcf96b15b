//! Revoked `jti`s, the revocation feed, and the cleanup of expired rows.

use deadpool_postgres::GenericClient;
use erpgate::revocation::{RevocationEvent, RevocationKind};

use super::conn::{LOCK_FEED, PostgresStore, exec, lock, pg, to_i64};
use crate::records::FeedRow;
use crate::rows;
use crate::{FEED_COLUMNS, StoreResult};

pub(super) async fn push_feed<C: GenericClient>(
    tx: &C,
    kind: RevocationKind,
    value: &str,
    expires_at: u64,
) -> StoreResult<()> {
    // Held to the commit: see the `postgres` module docs.
    lock(tx, LOCK_FEED).await?;
    exec(
        tx,
        "INSERT INTO revocation_feed (kind, value, expires_at) VALUES ($1, $2, $3)",
        &[&crate::kind_name(kind), &value, &to_i64(expires_at)],
    )
    .await?;
    Ok(())
}

pub(super) async fn publish(store: &PostgresStore, event: &RevocationEvent) -> StoreResult<()> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    lock(&tx, LOCK_FEED).await?;
    exec(
        &tx,
        "INSERT INTO revocation_feed (kind, value, expires_at, issued_before) VALUES ($1, $2, $3, $4)",
        &[
            &crate::kind_name(event.kind),
            &event.value,
            &to_i64(event.expires_at),
            &event.issued_before.map(to_i64),
        ],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(())
}

/// Revokes a `jti` with its feed event; false when it already was.
pub(super) async fn revoke_jti_in<C: GenericClient>(
    tx: &C,
    jti: &str,
    expires_at: u64,
) -> StoreResult<bool> {
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

pub(super) async fn revoke_jti(
    store: &PostgresStore,
    jti: &str,
    expires_at: u64,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let revoked = revoke_jti_in(&tx, jti, expires_at).await?;
    tx.commit().await.map_err(pg)?;
    Ok(revoked)
}

pub(super) async fn jti_revoked(store: &PostgresStore, jti: &str) -> StoreResult<bool> {
    let sql = "SELECT 1 FROM revoked_jti WHERE jti = $1";
    Ok(store.one(sql, &[&jti], |_| Ok(())).await?.is_some())
}

pub(super) async fn feed(
    store: &PostgresStore,
    cursor: u64,
    limit: usize,
) -> StoreResult<Vec<FeedRow>> {
    let sql =
        format!("SELECT {FEED_COLUMNS} FROM revocation_feed WHERE seq > $1 ORDER BY seq LIMIT $2");
    store
        .list(
            &sql,
            &[&to_i64(cursor), &to_i64(limit as u64)],
            rows::feed_row,
        )
        .await
}

pub(super) async fn purge_expired(
    store: &PostgresStore,
    now: u64,
    batch: usize,
) -> StoreResult<usize> {
    let c = store.client().await?;
    let mut total = 0;
    for table in crate::EXPIRING_TABLES {
        // Rows another replica is deleting right now are skipped, not
        // waited for.
        let sql = format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))"
        );
        let n = exec(&c, &sql, &[&to_i64(now), &to_i64(batch as u64)]).await?;
        total += usize::try_from(n).unwrap_or(usize::MAX);
    }
    let sql = "DELETE FROM identity_sessions WHERE ctid = ANY(ARRAY(SELECT ctid FROM identity_sessions WHERE ended_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))";
    let ended_before = to_i64(now.saturating_sub(crate::ENDED_SESSION_KEEP_S));
    let n = exec(&c, sql, &[&ended_before, &to_i64(batch as u64)]).await?;
    total += usize::try_from(n).unwrap_or(usize::MAX);
    Ok(total)
}

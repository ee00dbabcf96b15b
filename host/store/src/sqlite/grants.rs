//! Authorization codes, refresh tokens and the grants they belong to, and
//! consents.

use erpgate::revocation::RevocationKind;
use rusqlite::{Connection, params};

use super::conn::{SqliteStore, all, backend, conflict_or_backend, one, to_i64};
use super::revocation::push_feed;
use crate::records::{AuthCode, Consent, Redemption, RefreshToken};
use crate::rows::{self, Columns};
use crate::{BASIS_COLUMNS, CODE_COLUMNS, CONSENT_COLUMNS, REFRESH_COLUMNS, StoreResult};

/// Stores a refresh token unless its grant is revoked (one statement, so
/// atomic against a revocation); whether it was stored.
fn insert_refresh(tx: &Connection, t: &RefreshToken) -> StoreResult<bool> {
    let b = &t.basis;
    let stored = tx.execute(
        &format!("INSERT INTO refresh_tokens (hash, {BASIS_COLUMNS}, created_at, expires_at, jkt) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE NOT EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = ?2)"),
        params![t.hash, b.grant_id, b.client_id, b.login, b.sid, b.scopes.to_string(), to_i64(b.auth_time), to_i64(t.created_at), to_i64(t.expires_at), t.jkt],
    )
    .map_err(|e| conflict_or_backend(e, "refresh token"))?;
    Ok(stored == 1)
}

pub(super) async fn insert_auth_code(store: &SqliteStore, code: &AuthCode) -> StoreResult<()> {
    let code = code.clone();
    store.write(move |c| {
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

pub(super) async fn redeem_auth_code(
    store: &SqliteStore,
    hash: &str,
    now: u64,
) -> StoreResult<Redemption<AuthCode>> {
    let hash = hash.to_owned();
    store
        .write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let consumed = tx
            .execute(
                "UPDATE auth_codes SET consumed_at = ?2 WHERE hash = ?1 AND consumed_at IS NULL",
                params![hash, to_i64(now)],
            )
            .map_err(backend)?;
            let code = one(
                &tx,
                &format!("SELECT {CODE_COLUMNS} FROM auth_codes WHERE hash = ?1"),
                [&hash],
                |r| rows::code(r),
            )?;
            tx.commit().map_err(backend)?;
            Ok(match code {
                None => Redemption::Unknown,
                Some(code) if consumed == 1 => Redemption::Fresh(code),
                Some(code) => Redemption::Replayed(code),
            })
        })
        .await
}

pub(super) async fn insert_refresh_token(
    store: &SqliteStore,
    token: &RefreshToken,
) -> StoreResult<bool> {
    let token = token.clone();
    store.write(move |c| insert_refresh(c, &token)).await
}

pub(super) async fn refresh_token(
    store: &SqliteStore,
    hash: &str,
) -> StoreResult<Option<RefreshToken>> {
    let hash = hash.to_owned();
    store
        .read(move |c| {
            one(
                c,
                &format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE hash = ?1"),
                [hash],
                |r| rows::refresh(r),
            )
        })
        .await
}

pub(super) async fn rotate_refresh_token(
    store: &SqliteStore,
    hash: &str,
    next_hash: &str,
    now: u64,
    reuse_since: Option<u64>,
) -> StoreResult<Redemption<RefreshToken>> {
    let (hash, next_hash) = (hash.to_owned(), next_hash.to_owned());
    store
        .write(move |c| {
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
                Some(old)
                    if consumed == 1
                        || reuse_since
                            .map(|since| reuse_successor(&tx, &hash, since))
                            .transpose()?
                            .unwrap_or(false) =>
                {
                    let next = RefreshToken {
                        hash: next_hash,
                        created_at: now,
                        ..old.clone()
                    };
                    insert_successor(&tx, &next, &hash)?;
                    Redemption::Fresh(old)
                }
                Some(old) => Redemption::Replayed(old),
            };
            tx.commit().map_err(backend)?;
            Ok(outcome)
        })
        .await
}

/// Within the reuse interval: kills the live, unused successor of a token
/// rotated at or after `since`; true when there was one to kill.
fn reuse_successor(tx: &rusqlite::Transaction<'_>, hash: &str, since: u64) -> StoreResult<bool> {
    let rotated_at = one(
        tx,
        "SELECT dead_at FROM refresh_tokens WHERE hash = ?1",
        [hash],
        |r| r.get::<_, Option<i64>>(0).map_err(backend),
    )?
    .flatten();
    if rotated_at.is_none_or(|t| t < to_i64(since)) {
        return Ok(false);
    }
    // Killed, not rotated: 0, so it is never reused in turn.
    let killed = tx
        .execute(
            "UPDATE refresh_tokens SET dead_at = 0 WHERE parent = ?1 AND dead_at IS NULL",
            [hash],
        )
        .map_err(backend)?;
    Ok(killed == 1)
}

/// Stores `next` as the successor of `parent`.
fn insert_successor(
    tx: &rusqlite::Transaction<'_>,
    next: &RefreshToken,
    parent: &str,
) -> StoreResult<()> {
    insert_refresh(tx, next)?;
    tx.execute(
        "UPDATE refresh_tokens SET parent = ?2 WHERE hash = ?1",
        [&next.hash, parent],
    )
    .map_err(backend)?;
    Ok(())
}

pub(super) async fn record_grant_jti(
    store: &SqliteStore,
    grant_id: &str,
    jti: &str,
    expires_at: u64,
) -> StoreResult<bool> {
    let (grant, jti) = (grant_id.to_owned(), jti.to_owned());
    store
        .write(move |c| {
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

pub(super) async fn revoke_grant(
    store: &SqliteStore,
    grant_id: &str,
    now: u64,
) -> StoreResult<usize> {
    let grant = grant_id.to_owned();
    store
        .write(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            tx.execute(
                "INSERT OR IGNORE INTO revoked_grants (grant_id, expires_at) VALUES (?1, ?2)",
                params![
                    grant,
                    to_i64(now.saturating_add(crate::REVOKED_GRANT_KEPT_S))
                ],
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

pub(super) async fn consent(
    store: &SqliteStore,
    login: &str,
    client_id: &str,
) -> StoreResult<Option<Consent>> {
    let (login, client) = (login.to_owned(), client_id.to_owned());
    store
        .read(move |c| {
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

pub(super) async fn consents_of(store: &SqliteStore, login: &str) -> StoreResult<Vec<Consent>> {
    let login = login.to_owned();
    store
        .read(move |c| {
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

pub(super) async fn save_consent(store: &SqliteStore, consent: &Consent) -> StoreResult<()> {
    let c2 = consent.clone();
    store.write(move |c| {
        c.execute(
            "INSERT INTO consents (login, client_id, scopes, granted_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (login, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
            params![c2.login, c2.client_id, c2.scopes.to_string(), to_i64(c2.granted_at)],
        )
        .map_err(backend)?;
        Ok(())
    })
    .await
}

pub(super) async fn revoke_consent(
    store: &SqliteStore,
    login: &str,
    client_id: &str,
    now: u64,
) -> StoreResult<bool> {
    let (login, client) = (login.to_owned(), client_id.to_owned());
    store
        .write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let removed = tx
                .execute(
                    "DELETE FROM consents WHERE login = ?1 AND client_id = ?2",
                    params![login, client],
                )
                .map_err(backend)?;
            tx.execute(
                "UPDATE refresh_tokens SET dead_at = ?3 WHERE login = ?1 AND client_id = ?2 AND dead_at IS NULL",
                params![login, client, to_i64(now)],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(removed > 0)
        })
        .await
}

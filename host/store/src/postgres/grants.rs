//! Authorization codes, refresh tokens and the grants they belong to, and
//! consents.

use deadpool_postgres::GenericClient;

use super::conn::{Params, PostgresStore, conflict_or_backend, exec, pg, row, rows, to_i64};
use super::revocation::revoke_jti_in;
use crate::records::{AuthCode, Consent, Redemption, RefreshToken};
use crate::rows::{self, Columns};
use crate::{
    BASIS_COLUMNS, CODE_COLUMNS, CONSENT_COLUMNS, REFRESH_COLUMNS, REFRESH_WIDTH, StoreResult,
};

/// Stores a refresh token unless its grant is revoked; whether it was
/// stored. The caller holds the grant's lock.
async fn insert_refresh<C: GenericClient>(c: &C, t: &RefreshToken) -> StoreResult<bool> {
    let b = &t.basis;
    let statement = c
        .prepare_cached(&format!(
            "INSERT INTO refresh_tokens (hash, {BASIS_COLUMNS}, created_at, expires_at, jkt) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE NOT EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = $2)"
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
                &t.jkt,
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

pub(super) async fn insert_auth_code(store: &PostgresStore, code: &AuthCode) -> StoreResult<()> {
    let b = &code.basis;
    let c = store.client().await?;
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

pub(super) async fn redeem_auth_code(
    store: &PostgresStore,
    hash: &str,
    now: u64,
) -> StoreResult<Redemption<AuthCode>> {
    let c = store.client().await?;
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

pub(super) async fn insert_refresh_token(
    store: &PostgresStore,
    token: &RefreshToken,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    lock_grant(&tx, &token.basis.grant_id).await?;
    let stored = insert_refresh(&tx, token).await?;
    tx.commit().await.map_err(pg)?;
    Ok(stored)
}

pub(super) async fn refresh_token(
    store: &PostgresStore,
    hash: &str,
) -> StoreResult<Option<RefreshToken>> {
    let sql = format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE hash = $1");
    store.one(&sql, &[&hash], rows::refresh).await
}

pub(super) async fn rotate_refresh_token(
    store: &PostgresStore,
    hash: &str,
    next_hash: &str,
    now: u64,
    reuse_since: Option<u64>,
) -> StoreResult<Redemption<RefreshToken>> {
    let mut c = store.client().await?;
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
    let consumed = match row(&tx, &returning, &[&hash, &to_i64(now)]).await? {
        Some(r) => Some(rows::refresh(&r)?),
        None => None,
    };
    let old = match consumed {
        Some(old) => old,
        None => {
            let select =
                format!("SELECT {REFRESH_COLUMNS}, dead_at FROM refresh_tokens WHERE hash = $1");
            let Some(r) = row(&tx, &select, &[&hash]).await? else {
                return Ok(Redemption::Unknown);
            };
            let old = rows::refresh(&r)?;
            // dead_at follows the REFRESH_COLUMNS: the rotation time.
            let rotated_at: Option<i64> = r.try_get(REFRESH_WIDTH).map_err(pg)?;
            // Within the reuse interval, the live, unused successor dies
            // (0: killed, never reused in turn) and the old token is
            // rotated again.
            let reusable = match (reuse_since, rotated_at) {
                (Some(since), Some(at)) if at >= to_i64(since) => exec(
                    &tx,
                    "UPDATE refresh_tokens SET dead_at = 0 WHERE parent = $1 AND dead_at IS NULL",
                    &[&hash],
                )
                .await?
                    == 1,
                _ => false,
            };
            if !reusable {
                return Ok(Redemption::Replayed(old));
            }
            old
        }
    };
    let next = RefreshToken {
        hash: next_hash.to_owned(),
        created_at: now,
        ..old.clone()
    };
    insert_refresh(&tx, &next).await?;
    exec(
        &tx,
        "UPDATE refresh_tokens SET parent = $2 WHERE hash = $1",
        &[&next.hash, &hash],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(Redemption::Fresh(old))
}

pub(super) async fn record_grant_jti(
    store: &PostgresStore,
    grant_id: &str,
    jti: &str,
    expires_at: u64,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
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

pub(super) async fn revoke_grant(
    store: &PostgresStore,
    grant_id: &str,
    now: u64,
) -> StoreResult<usize> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    lock_grant(&tx, grant_id).await?;
    exec(
        &tx,
        "INSERT INTO revoked_grants (grant_id, expires_at) VALUES ($1, $2) ON CONFLICT (grant_id) DO NOTHING",
        &[&grant_id, &to_i64(now.saturating_add(crate::REVOKED_GRANT_KEPT_S))],
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

pub(super) async fn consent(
    store: &PostgresStore,
    login: &str,
    client_id: &str,
) -> StoreResult<Option<Consent>> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE login = $1 AND client_id = $2");
    store.one(&sql, &[&login, &client_id], rows::consent).await
}

pub(super) async fn consents_of(store: &PostgresStore, login: &str) -> StoreResult<Vec<Consent>> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE login = $1 ORDER BY client_id");
    store.list(&sql, &[&login], rows::consent).await
}

pub(super) async fn save_consent(store: &PostgresStore, consent: &Consent) -> StoreResult<()> {
    let sql = "INSERT INTO consents (login, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT (login, client_id) DO UPDATE SET scopes = EXCLUDED.scopes, granted_at = EXCLUDED.granted_at";
    let scopes = consent.scopes.to_string();
    let params: Params<'_> = &[
        &consent.login,
        &consent.client_id,
        &scopes,
        &to_i64(consent.granted_at),
    ];
    store.run(sql, params).await.map(drop)
}

pub(super) async fn revoke_consent(
    store: &PostgresStore,
    login: &str,
    client_id: &str,
    now: u64,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let removed = exec(
        &tx,
        "DELETE FROM consents WHERE login = $1 AND client_id = $2",
        &[&login, &client_id],
    )
    .await?;
    exec(
        &tx,
        "UPDATE refresh_tokens SET dead_at = $3 WHERE login = $1 AND client_id = $2 AND dead_at IS NULL",
        &[&login, &client_id, &to_i64(now)],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(removed > 0)
}

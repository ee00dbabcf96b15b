//! Reference tokens.

use deadpool_postgres::GenericClient;
use erpgate::revocation::RevocationKind;

use super::conn::{PostgresStore, conflict_or_backend, exec, pg, row, to_i64};
use super::revocation::push_feed;
use crate::records::ReferenceToken;
use crate::rows;
use crate::{StoreResult, TOKEN_COLUMNS, TokenContext};

pub(super) async fn insert_reference_token(
    store: &PostgresStore,
    t: &ReferenceToken,
) -> StoreResult<()> {
    let c = store.client().await?;
    c.execute(
        &format!("INSERT INTO reference_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
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
            &t.jkt,
        ],
    )
    .await
    .map_err(|e| conflict_or_backend(e, &t.id))?;
    Ok(())
}

pub(super) async fn reference_token(
    store: &PostgresStore,
    hash: &str,
) -> StoreResult<Option<ReferenceToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM reference_tokens WHERE hash = $1");
    store.one(&sql, &[&hash], rows::token).await
}

pub(super) async fn reference_token_context(
    store: &PostgresStore,
    hash: &str,
) -> StoreResult<Option<TokenContext>> {
    store
        .one(&crate::TOKEN_CONTEXT_PG, &[&hash], rows::token_context)
        .await
}

pub(super) async fn reference_tokens(store: &PostgresStore) -> StoreResult<Vec<ReferenceToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM reference_tokens ORDER BY created_at DESC, id");
    store.list(&sql, &[], rows::token).await
}

pub(super) async fn revoke_reference_token(
    store: &PostgresStore,
    hash_or_id: &str,
    now: u64,
) -> StoreResult<Option<ReferenceToken>> {
    let mut c = store.client().await?;
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

pub(super) async fn record_token_use(
    store: &PostgresStore,
    uses: &[(String, u64)],
) -> StoreResult<()> {
    // One statement; rows locked in hash order so two replicas flushing
    // overlapping batches cannot deadlock.
    let mut sorted: Vec<&(String, u64)> = uses.iter().collect();
    sorted.sort();
    let hashes: Vec<&str> = sorted.iter().map(|(h, _)| h.as_str()).collect();
    let times: Vec<i64> = sorted.iter().map(|(_, t)| to_i64(*t)).collect();
    let c = store.client().await?;
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

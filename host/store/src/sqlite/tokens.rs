//! Reference tokens.

use erpgate::revocation::RevocationKind;
use rusqlite::params;

use super::conn::{SqliteStore, all, backend, conflict_or_backend, one, to_i64};
use super::revocation::push_feed;
use crate::records::ReferenceToken;
use crate::rows;
use crate::{StoreResult, TOKEN_COLUMNS, TokenContext};

pub(super) async fn insert_reference_token(
    store: &SqliteStore,
    token: &ReferenceToken,
) -> StoreResult<()> {
    let t = token.clone();
    store.write(move |c| {
        c.execute(
            &format!("INSERT INTO reference_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
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
                t.revoked_at.map(to_i64),
                t.jkt
            ],
        )
        .map_err(|e| conflict_or_backend(e, &t.id))?;
        Ok(())
    })
    .await
}

pub(super) async fn reference_token(
    store: &SqliteStore,
    hash: &str,
) -> StoreResult<Option<ReferenceToken>> {
    let hash = hash.to_owned();
    store
        .read(move |c| {
            one(
                c,
                &format!("SELECT {TOKEN_COLUMNS} FROM reference_tokens WHERE hash = ?1"),
                [hash],
                |r| rows::token(r),
            )
        })
        .await
}

pub(super) async fn reference_token_context(
    store: &SqliteStore,
    hash: &str,
) -> StoreResult<Option<TokenContext>> {
    let hash = hash.to_owned();
    store
        .read(move |c| {
            one(c, &crate::TOKEN_CONTEXT_SQLITE, [hash], |r| {
                rows::token_context(r)
            })
        })
        .await
}

pub(super) async fn reference_tokens(store: &SqliteStore) -> StoreResult<Vec<ReferenceToken>> {
    store
        .read(|c| {
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

pub(super) async fn revoke_reference_token(
    store: &SqliteStore,
    hash_or_id: &str,
    now: u64,
) -> StoreResult<Option<ReferenceToken>> {
    let key = hash_or_id.to_owned();
    store.write(move |c| {
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

pub(super) async fn record_token_use(
    store: &SqliteStore,
    uses: &[(String, u64)],
) -> StoreResult<()> {
    let uses = uses.to_vec();
    store.write(move |c| {
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

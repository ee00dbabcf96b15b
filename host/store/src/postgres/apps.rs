//! Trusted applications, users and signing keys.

use deadpool_postgres::GenericClient;
use erpgate::revocation::RevocationKind;

use super::conn::{LOCK_KEYS, PostgresStore, conflict_or_backend, exec, lock, pg, row, to_i64};
use super::revocation::push_feed;
use crate::records::{SigningKeyRecord, TrustedApp, User};
use crate::rows;
use crate::{APP_COLUMNS, KEY_COLUMNS, StoreResult, USER_COLUMNS};

pub(super) async fn app(store: &PostgresStore, client_id: &str) -> StoreResult<Option<TrustedApp>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM trusted_apps WHERE client_id = $1");
    store.one(&sql, &[&client_id], |r| rows::app(r, 0)).await
}

pub(super) async fn apps(store: &PostgresStore) -> StoreResult<Vec<TrustedApp>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM trusted_apps ORDER BY client_id");
    store.list(&sql, &[], |r| rows::app(r, 0)).await
}

/// An app's columns in `APP_COLUMNS` order, owned, so that they can be
/// lent as statement parameters: `client_id` `$1` … `created_at` `$17`.
struct AppRow<'a> {
    app: &'a TrustedApp,
    client_type: &'static str,
    reference_tokens: &'static str,
    redirect_uris: String,
    logout_uris: String,
    scope: String,
    created_at: i64,
}

impl<'a> AppRow<'a> {
    fn of(app: &'a TrustedApp) -> Self {
        Self {
            app,
            client_type: app.client_type.code(),
            reference_tokens: app.reference_tokens.code(),
            redirect_uris: app.redirect_uris.join(","),
            logout_uris: app.logout_uris.join(","),
            scope: app.scope.to_string(),
            created_at: to_i64(app.created_at),
        }
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 18] {
        let a = self.app;
        [
            &a.client_id,
            &a.name,
            &self.client_type,
            &a.secret_hash,
            &self.redirect_uris,
            &self.logout_uris,
            &a.internal_users_allowed,
            &a.community_users_allowed,
            &a.system_user_allowed,
            &a.system_user,
            &self.scope,
            &self.reference_tokens,
            &a.basic_auth_allowed,
            &a.enabled,
            &a.public_refresh_tokens,
            &a.internal,
            &a.require_dpop,
            &self.created_at,
        ]
    }
}

pub(super) async fn insert_app(store: &PostgresStore, a: &TrustedApp) -> StoreResult<()> {
    let c = store.client().await?;
    let row = AppRow::of(a);
    c.execute(
        &format!("INSERT INTO trusted_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"),
        &row.params(),
    )
    .await
    .map_err(|e| conflict_or_backend(e, &a.client_id))?;
    Ok(())
}

pub(super) async fn set_app_enabled(
    store: &PostgresStore,
    client_id: &str,
    enabled: bool,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
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

pub(super) async fn delete_app(
    store: &PostgresStore,
    client_id: &str,
    now: u64,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let found = exec(
        &tx,
        "DELETE FROM trusted_apps WHERE client_id = $1",
        &[&client_id],
    )
    .await?
        > 0;
    if found {
        let now = to_i64(now);
        exec(
            &tx,
            "UPDATE refresh_tokens SET dead_at = $2 WHERE client_id = $1 AND dead_at IS NULL",
            &[&client_id, &now],
        )
        .await?;
        exec(
            &tx,
            "UPDATE reference_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
            &[&client_id, &now],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM consents WHERE client_id = $1",
            &[&client_id],
        )
        .await?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(found)
}

pub(super) async fn set_app_secret_hash(
    store: &PostgresStore,
    client_id: &str,
    secret_hash: &str,
) -> StoreResult<bool> {
    let sql = "UPDATE trusted_apps SET secret_hash = $2 WHERE client_id = $1";
    Ok(store.run(sql, &[&client_id, &secret_hash]).await? > 0)
}

pub(super) async fn update_app(store: &PostgresStore, a: &TrustedApp) -> StoreResult<bool> {
    let mut c = store.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let row = AppRow::of(a);
    // Every column but created_at ($18).
    let found = exec(
        &tx,
        "UPDATE trusted_apps SET name = $2, client_type = $3, secret_hash = $4, redirect_uris = $5, logout_uris = $6, internal_users = $7, community_users = $8, system_user_allowed = $9, system_user = $10, scope = $11, reference_tokens = $12, basic_auth = $13, enabled = $14, public_refresh_tokens = $15, internal = $16, require_dpop = $17 WHERE client_id = $1",
        row.params().get(..17).unwrap_or_default(),
    )
    .await?
        > 0;
    if found && !a.enabled {
        exec(
            &tx,
            "UPDATE refresh_tokens SET dead_at = extract(epoch from now())::bigint WHERE client_id = $1 AND dead_at IS NULL",
            &[&a.client_id],
        )
        .await?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(found)
}

pub(super) async fn user(store: &PostgresStore, login: &str) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
    store.one(&sql, &[&login], |r| rows::user(r, 0)).await
}

pub(super) async fn users(store: &PostgresStore) -> StoreResult<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
    store.list(&sql, &[], |r| rows::user(r, 0)).await
}

pub(super) async fn insert_user(store: &PostgresStore, u: &User) -> StoreResult<()> {
    let c = store.client().await?;
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

pub(super) async fn update_user_profile(store: &PostgresStore, u: &User) -> StoreResult<bool> {
    let sql = "UPDATE users SET name = $2, email = $3, user_type = $4, is_admin = $5, locale = $6 WHERE login = $1";
    let updated = store
        .run(
            sql,
            &[
                &u.login,
                &u.name,
                &u.email,
                &u.user_type,
                &u.is_admin,
                &u.locale,
            ],
        )
        .await?;
    Ok(updated > 0)
}

pub(super) async fn signing_keys(store: &PostgresStore) -> StoreResult<Vec<SigningKeyRecord>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, ord DESC");
    store.list(&sql, &[], rows::signing_key).await
}

pub(super) async fn insert_first_signing_key(
    store: &PostgresStore,
    k: &SigningKeyRecord,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
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

pub(super) async fn rotate_signing_key(
    store: &PostgresStore,
    k: &SigningKeyRecord,
    retire_old_at: u64,
) -> StoreResult<()> {
    let mut c = store.client().await?;
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

pub(super) async fn set_password_hash(
    store: &PostgresStore,
    login: &str,
    hash: &str,
    now: u64,
    event_expires_at: u64,
) -> StoreResult<bool> {
    let mut c = store.client().await?;
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
    let ended = tx
        .query(
            "UPDATE identity_sessions SET ended_at = $2 WHERE login = $1 AND ended_at IS NULL RETURNING sid",
            &[&login, &to_i64(now)],
        )
        .await
        .map_err(pg)?;
    for r in &ended {
        let sid: String = r.try_get(0).map_err(pg)?;
        push_feed(&tx, RevocationKind::Sid, &sid, event_expires_at).await?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(changed > 0)
}

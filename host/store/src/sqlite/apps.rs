//! Trusted applications, users and signing keys.

use erpgate::revocation::RevocationKind;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter};

use super::conn::{SqliteStore, all, backend, conflict_or_backend, one, to_i64};
use super::revocation::push_feed;
use crate::records::{SigningKeyRecord, TrustedApp, User};
use crate::rows;
use crate::{APP_COLUMNS, KEY_COLUMNS, StoreResult, USER_COLUMNS};

pub(super) async fn app(store: &SqliteStore, client_id: &str) -> StoreResult<Option<TrustedApp>> {
    let id = client_id.to_owned();
    store
        .read(move |c| {
            one(
                c,
                &format!("SELECT {APP_COLUMNS} FROM trusted_apps WHERE client_id = ?1"),
                [id],
                |r| rows::app(r, 0),
            )
        })
        .await
}

pub(super) async fn apps(store: &SqliteStore) -> StoreResult<Vec<TrustedApp>> {
    store
        .read(|c| {
            all(
                c,
                &format!("SELECT {APP_COLUMNS} FROM trusted_apps ORDER BY client_id"),
                [],
                |r| rows::app(r, 0),
            )
        })
        .await
}

/// An app's columns in `APP_COLUMNS` order: `client_id` first (`?1`),
/// `created_at` last (`?18`).
fn app_values(a: &TrustedApp) -> Vec<Value> {
    vec![
        a.client_id.clone().into(),
        a.name.clone().into(),
        a.client_type.code().to_owned().into(),
        a.secret_hash.clone().into(),
        a.redirect_uris.join(",").into(),
        a.logout_uris.join(",").into(),
        a.internal_users_allowed.into(),
        a.community_users_allowed.into(),
        a.system_user_allowed.into(),
        a.system_user.clone().into(),
        a.scope.to_string().into(),
        a.reference_tokens.code().to_owned().into(),
        a.basic_auth_allowed.into(),
        a.enabled.into(),
        a.public_refresh_tokens.into(),
        a.internal.into(),
        a.require_dpop.into(),
        to_i64(a.created_at).into(),
    ]
}

pub(super) async fn insert_app(store: &SqliteStore, app: &TrustedApp) -> StoreResult<()> {
    let a = app.clone();
    store.write(move |c| {
        c.execute(
            &format!("INSERT INTO trusted_apps ({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"),
            params_from_iter(app_values(&a)),
        )
        .map_err(|e| conflict_or_backend(e, &a.client_id))?;
        Ok(())
    })
    .await
}

pub(super) async fn update_app(store: &SqliteStore, app: &TrustedApp) -> StoreResult<bool> {
    let a = app.clone();
    store.write(move |c| {
        let tx = c.transaction().map_err(backend)?;
        // Every column but created_at (?18).
        let found = tx
            .execute(
                "UPDATE trusted_apps SET name = ?2, client_type = ?3, secret_hash = ?4, redirect_uris = ?5, logout_uris = ?6, internal_users = ?7, community_users = ?8, system_user_allowed = ?9, system_user = ?10, scope = ?11, reference_tokens = ?12, basic_auth = ?13, enabled = ?14, public_refresh_tokens = ?15, internal = ?16, require_dpop = ?17 WHERE client_id = ?1",
                params_from_iter(app_values(&a).into_iter().take(17)),
            )
            .map_err(backend)?
            > 0;
        if found && !a.enabled {
            tx.execute(
                "UPDATE refresh_tokens SET dead_at = strftime('%s','now') WHERE client_id = ?1 AND dead_at IS NULL",
                [&a.client_id],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(found)
    })
    .await
}

pub(super) async fn set_app_enabled(
    store: &SqliteStore,
    client_id: &str,
    enabled: bool,
) -> StoreResult<bool> {
    let id = client_id.to_owned();
    store.write(move |c| {
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

pub(super) async fn delete_app(
    store: &SqliteStore,
    client_id: &str,
    now: u64,
) -> StoreResult<bool> {
    let id = client_id.to_owned();
    store
        .write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let found = tx
                .execute("DELETE FROM trusted_apps WHERE client_id = ?1", [&id])
                .map_err(backend)?
                > 0;
            if found {
                tx.execute(
                    "UPDATE refresh_tokens SET dead_at = ?2 WHERE client_id = ?1 AND dead_at IS NULL",
                    params![id, to_i64(now)],
                )
                .map_err(backend)?;
                tx.execute(
                    "UPDATE reference_tokens SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
                    params![id, to_i64(now)],
                )
                .map_err(backend)?;
                tx.execute("DELETE FROM consents WHERE client_id = ?1", [&id])
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(found)
        })
        .await
}

pub(super) async fn set_app_secret_hash(
    store: &SqliteStore,
    client_id: &str,
    secret_hash: &str,
) -> StoreResult<bool> {
    let (id, hash) = (client_id.to_owned(), secret_hash.to_owned());
    store
        .write(move |c| {
            c.execute(
                "UPDATE trusted_apps SET secret_hash = ?2 WHERE client_id = ?1",
                params![id, hash],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
}

pub(super) async fn user(store: &SqliteStore, login: &str) -> StoreResult<Option<User>> {
    let login = login.to_owned();
    store
        .read(move |c| {
            one(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users WHERE login = ?1"),
                [login],
                |r| rows::user(r, 0),
            )
        })
        .await
}

pub(super) async fn users(store: &SqliteStore) -> StoreResult<Vec<User>> {
    store
        .read(|c| {
            all(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY login"),
                [],
                |r| rows::user(r, 0),
            )
        })
        .await
}

pub(super) async fn insert_user(store: &SqliteStore, user: &User) -> StoreResult<()> {
    let u = user.clone();
    store
        .write(move |c| {
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

pub(super) async fn update_user_profile(store: &SqliteStore, user: &User) -> StoreResult<bool> {
    let u = user.clone();
    store
        .write(move |c| {
            let updated = c
                .execute(
                    "UPDATE users SET name = ?2, email = ?3, user_type = ?4, is_admin = ?5, locale = ?6 WHERE login = ?1",
                    params![u.login, u.name, u.email, u.user_type, u.is_admin, u.locale],
                )
                .map_err(backend)?;
            Ok(updated > 0)
        })
        .await
}

pub(super) async fn signing_keys(store: &SqliteStore) -> StoreResult<Vec<SigningKeyRecord>> {
    store
        .read(|c| {
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

pub(super) async fn insert_first_signing_key(
    store: &SqliteStore,
    key: &SigningKeyRecord,
) -> StoreResult<bool> {
    let k = key.clone();
    store.write(move |c| {
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

pub(super) async fn rotate_signing_key(
    store: &SqliteStore,
    key: &SigningKeyRecord,
    retire_old_at: u64,
) -> StoreResult<()> {
    let k = key.clone();
    store.write(move |c| {
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

pub(super) async fn set_password_hash(
    store: &SqliteStore,
    login: &str,
    hash: &str,
    now: u64,
    event_expires_at: u64,
) -> StoreResult<bool> {
    let (login, hash) = (login.to_owned(), hash.to_owned());
    store
        .write(move |c| {
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
            let sids: Vec<String> = all(
                &tx,
                "SELECT sid FROM identity_sessions WHERE login = ?1 AND ended_at IS NULL",
                [&login],
                |r| r.get(0).map_err(backend),
            )?;
            tx.execute(
                "UPDATE identity_sessions SET ended_at = ?2 WHERE login = ?1 AND ended_at IS NULL",
                params![login, to_i64(now)],
            )
            .map_err(backend)?;
            for sid in &sids {
                push_feed(&tx, RevocationKind::Sid, sid, event_expires_at)?;
            }
            tx.commit().map_err(backend)?;
            Ok(changed > 0)
        })
        .await
}

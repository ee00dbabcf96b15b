//! Making the store hold what a configuration file declares, and spotting
//! the demo instance's records in a store that is not the demo's.

use erpgate_store::records::{TrustedApp, User};
use erpgate_store::secrets::secret_hash;
use erpgate_store::{Store, StoreError};

use crate::accounts::{hash_password, password_ok};
use crate::changes;
use crate::config::{AppConfig, Config, UserConfig};

/// Brings the store in line with the file: every app and user it declares
/// is created, or updated to what the file says. The file is the source of
/// truth for what it declares (an app's fields, a user's profile, and a
/// password the file gives, applied with the same effects as a password
/// change); records it does not name are left alone. A user's subject id
/// never changes once stored.
pub async fn seed(store: &dyn Store, config: &Config, now: u64) -> anyhow::Result<()> {
    let lifetime = config.instance.access_token_lifetime_s;
    for u in &config.users {
        seed_user(store, u, now, lifetime).await?;
    }
    for a in &config.apps {
        let app = declared_app(a, now)?;
        match store.insert_app(&app).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                let stored = store.app(&app.client_id).await?;
                if let Some(stored) = stored.filter(|s| {
                    TrustedApp {
                        created_at: now,
                        ..s.clone()
                    } != app
                }) {
                    store.update_app(&app).await?;
                    tracing::info!(client_id = %app.client_id, "app updated from the configuration");
                    if changes::app_narrowed(&stored, Some(&app)) {
                        changes::app_changed(store, &app.client_id, now, lifetime).await?;
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn declared_app(a: &AppConfig, now: u64) -> anyhow::Result<TrustedApp> {
    let mut app = TrustedApp::new(&a.client_id, &a.name, now);
    app.client_type = a.client_type;
    app.secret_hash = a
        .secret
        .as_deref()
        .map(secret_hash)
        .or_else(|| a.secret_sha256.clone());
    app.redirect_uris = a.redirect_uris.clone();
    app.logout_uris = a.logout_uris.clone();
    app.internal_users_allowed = a.internal_users;
    app.community_users_allowed = a.community_users;
    app.system_user_allowed = a.system_user_allowed;
    app.system_user = a.system_user.clone();
    app.scope = erpgate::ScopeSet::parse(&a.scope)?;
    app.reference_tokens = a.reference_tokens;
    app.basic_auth_allowed = a.basic_auth;
    app.enabled = a.enabled;
    app.public_refresh_tokens = a.public_refresh_tokens;
    app.internal = a.internal;
    app.require_dpop = a.require_dpop;
    Ok(app)
}

async fn seed_user(
    store: &dyn Store,
    u: &UserConfig,
    now: u64,
    lifetime: u64,
) -> anyhow::Result<()> {
    let event_expires_at = now.saturating_add(lifetime);
    let hash = |p: &str| hash_password(p).map_err(|e| anyhow::anyhow!("hashing a password: {e}"));
    let Some(stored) = store.user(&u.login).await? else {
        let user = User {
            login: u.login.clone(),
            id: u
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            name: u.name.clone().unwrap_or_else(|| u.login.clone()),
            email: u.email.clone().unwrap_or_default(),
            user_type: u.user_type.clone(),
            is_admin: u.is_admin,
            locale: u.locale.clone(),
            password_hash: u.password.as_deref().map(hash).transpose()?,
        };
        return match store.insert_user(&user).await {
            // Replicas starting together seed at once: the first insert wins.
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        };
    };
    let declared = User {
        name: u.name.clone().unwrap_or_else(|| u.login.clone()),
        email: u.email.clone().unwrap_or_default(),
        user_type: u.user_type.clone(),
        is_admin: u.is_admin,
        locale: u.locale.clone(),
        ..stored.clone()
    };
    if declared != stored {
        store.update_user_profile(&declared).await?;
        tracing::info!(login = %u.login, "user updated from the configuration");
        if changes::user_demoted(&stored, &declared) {
            changes::user_changed(store, &u.login, now, lifetime).await?;
        }
    }
    if u.id.as_ref().is_some_and(|id| *id != stored.id) {
        tracing::warn!(login = %u.login, "users.id differs from the stored subject id, which never changes; the stored one stays");
    }
    if let Some(password) = &u.password
        && !password_ok(stored.password_hash.clone(), password.clone()).await
    {
        store
            .set_password_hash(&u.login, &hash(password)?, now, event_expires_at)
            .await?;
        changes::user_changed(store, &u.login, now, lifetime).await?;
        tracing::info!(login = %u.login, "password set from the configuration; the user's sessions are ended");
    }
    Ok(())
}

/// What of the built-in demo instance a store holds: demo apps that still
/// have their published secret, and demo users that still have their
/// published password. A real instance's store should hold none.
pub async fn demo_leftovers(store: &dyn Store) -> anyhow::Result<Vec<String>> {
    let demo = Config::demo();
    let mut found = Vec::new();
    for a in &demo.apps {
        let Some(secret) = &a.secret else { continue };
        if let Some(app) = store.app(&a.client_id).await?
            && app.secret_hash.as_deref() == Some(secret_hash(secret).as_str())
        {
            found.push(format!("app {} with the demo secret", a.client_id));
        }
    }
    for u in &demo.users {
        let Some(password) = &u.password else {
            continue;
        };
        if let Some(user) = store.user(&u.login).await?
            && user.password_hash.is_some()
            && password_ok(user.password_hash.clone(), password.clone()).await
        {
            found.push(format!("user {} with the demo password", u.login));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use erpgate_store::records::{ClientType, ReferenceTokenPolicy};

    /// ERP.net's trusted-application defaults (§2.3): a record that names
    /// only its `ApplicationUri` is `(unnamed)`, Confidential, enabled, with
    /// ReferenceTokens none and every flag off.
    #[test]
    fn a_declared_app_takes_erpnet_defaults() {
        let config = Config::parse("[[apps]]\nclient_id = \"a\"\nsecret = \"s\"\n").unwrap();
        let app = declared_app(&config.apps[0], 7).unwrap();
        assert_eq!(app.name, "(unnamed)");
        assert_eq!(app.client_type, ClientType::Confidential);
        assert!(app.enabled);
        assert_eq!(app.reference_tokens, ReferenceTokenPolicy::None);
        assert!(
            !(app.internal_users_allowed
                || app.community_users_allowed
                || app.system_user_allowed
                || app.basic_auth_allowed
                || app.internal
                || app.public_refresh_tokens
                || app.require_dpop)
        );
        assert!(app.scope.is_empty() && app.redirect_uris.is_empty());
        assert_eq!(app.secret_hash.as_deref(), Some(secret_hash("s").as_str()));
        assert_eq!(app.created_at, 7);
    }
}

//! Telling the edges that an app or a user changed in a way that narrows
//! or kills their tokens.
//!
//! ERP.net looks reference tokens up on every request and applies the
//! current state; an edge that caches introspection replies must not keep
//! serving one from before a change. Every change that can narrow or end
//! what a token allows publishes a `client_id` or `sub` event: the edge then
//! refuses the app's (or subject's) JWTs issued before it and introspects
//! its reference tokens again, so the reply reflects the change.
//!
//! The event is written after the change it reports. A reply the edge
//! obtained while the change was being written is also voided: the event
//! reaches back [`VOID_MARGIN_S`] seconds past the change. A JWT issued in
//! that margin is refused too, and its client simply gets another.

use erpgate::revocation::{RevocationEvent, RevocationKind};
use erpgate_store::Store;
use erpgate_store::records::{TrustedApp, User};

/// How far past the change an event voids verdicts.
pub const VOID_MARGIN_S: u64 = 2;

/// Whether going from `before` to `after` (`None`: removed) can narrow or
/// end what a token of the app allows. Widening (a scope added, the app
/// enabled) and cosmetic edits (name, redirect URIs) cannot.
pub fn app_narrowed(before: &TrustedApp, after: Option<&TrustedApp>) -> bool {
    let Some(after) = after else { return true };
    let lost = |was: bool, is: bool| was && !is;
    (before.enabled && !after.enabled)
        || !after.scope.contains_all(&before.scope)
        || before.system_user != after.system_user
        || lost(before.system_user_allowed, after.system_user_allowed)
        || before.reference_tokens != after.reference_tokens
        || lost(before.internal, after.internal)
        || lost(before.internal_users_allowed, after.internal_users_allowed)
        || lost(
            before.community_users_allowed,
            after.community_users_allowed,
        )
        || before.client_type != after.client_type
}

/// Whether a profile change demotes the user: administrator rights or the
/// user type, which tokens and introspection replies carry, changed.
pub fn user_demoted(before: &User, after: &User) -> bool {
    (before.is_admin && !after.is_admin) || before.user_type != after.user_type
}

/// Publishes that verdicts about `client_id`'s tokens from before now are void.
pub async fn app_changed(
    store: &dyn Store,
    client_id: &str,
    now: u64,
    access_token_lifetime_s: u64,
) -> anyhow::Result<()> {
    publish(
        store,
        RevocationKind::ClientId,
        client_id,
        now,
        access_token_lifetime_s,
    )
    .await
}

/// Publishes that verdicts about `login`'s tokens (as a user, or as an
/// app's SystemUser) from before now are void.
pub async fn user_changed(
    store: &dyn Store,
    login: &str,
    now: u64,
    access_token_lifetime_s: u64,
) -> anyhow::Result<()> {
    publish(
        store,
        RevocationKind::Sub,
        login,
        now,
        access_token_lifetime_s,
    )
    .await
}

async fn publish(
    store: &dyn Store,
    kind: RevocationKind,
    value: &str,
    now: u64,
    access_token_lifetime_s: u64,
) -> anyhow::Result<()> {
    let issued_before = now.saturating_add(VOID_MARGIN_S);
    let event = RevocationEvent {
        kind,
        value: value.to_owned(),
        issued_before: Some(issued_before),
        // Every JWT from before the change has expired by then, and edges
        // cache introspection replies for far less.
        expires_at: issued_before.saturating_add(access_token_lifetime_s),
    };
    store.publish_revocation(&event).await?;
    tracing::info!(kind = ?kind, value, "change published to the revocation feed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> TrustedApp {
        let mut app = TrustedApp::new("PK", "Pk", 1);
        app.scope = erpgate::ScopeSet::parse("read update").unwrap();
        app
    }

    #[test]
    fn narrowing_is_told_apart_from_widening() {
        let before = app();
        assert!(app_narrowed(&before, None), "removed");
        let same = before.clone();
        assert!(!app_narrowed(&before, Some(&same)));
        let mut wider = before.clone();
        wider.scope.insert("offline_access").unwrap();
        wider.name = "renamed".into();
        wider.redirect_uris.push("https://app.example/cb".into());
        assert!(!app_narrowed(&before, Some(&wider)));
        let mut narrower = before.clone();
        narrower.scope.remove("update");
        assert!(app_narrowed(&before, Some(&narrower)));
        let mut disabled = before.clone();
        disabled.enabled = false;
        assert!(app_narrowed(&before, Some(&disabled)));
        assert!(!app_narrowed(&disabled, Some(&before)), "enabling widens");
        let mut other_user = before.clone();
        other_user.system_user = Some("someone".into());
        assert!(app_narrowed(&before, Some(&other_user)));
        let mut no_pats = before.clone();
        no_pats.reference_tokens = erpgate_store::records::ReferenceTokenPolicy::AdministratorsOnly;
        assert!(app_narrowed(&before, Some(&no_pats)));
    }

    #[test]
    fn demotion_is_admin_rights_or_type() {
        let user = User {
            login: "alice".into(),
            id: "1".into(),
            name: "Alice".into(),
            email: String::new(),
            user_type: "InternalUser".into(),
            is_admin: true,
            locale: "en".into(),
            password_hash: None,
        };
        let renamed = User {
            name: "Alice B".into(),
            ..user.clone()
        };
        assert!(!user_demoted(&user, &renamed));
        let plain = User {
            is_admin: false,
            ..user.clone()
        };
        assert!(user_demoted(&user, &plain));
        assert!(!user_demoted(&plain, &user), "promotion widens");
        let community = User {
            user_type: "ExternalCommunityUser".into(),
            ..user.clone()
        };
        assert!(user_demoted(&user, &community));
    }
}

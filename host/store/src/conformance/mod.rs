//! The store test suite: every backend must pass it unchanged. Its sections
//! live in sibling modules; this one runs them in order.

mod fixtures;
mod grants;
mod races;
mod records;
mod sessions;

pub(crate) use races::race;

use erpgate::ScopeSet;
use erpgate::revocation::RevocationKind;

use crate::records::{ReferenceToken, TrustedApp, User};
use crate::{Store, StoreError};

use fixtures::{key, token};

pub(crate) async fn run(store: &dyn Store) {
    // apps
    let mut app = TrustedApp::new("app", "App", 1);
    app.scope = ScopeSet::parse("read update").unwrap();
    app.redirect_uris = vec!["https://a/cb".into(), "http://127.0.0.1:1/cb".into()];
    app.system_user = Some("svc".into());
    app.system_user_allowed = true;
    store.insert_app(&app).await.unwrap();
    assert!(matches!(
        store.insert_app(&app).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.app("app").await.unwrap(), Some(app.clone()));
    assert_eq!(store.app("nope").await.unwrap(), None);
    assert!(store.set_app_enabled("app", false).await.unwrap());
    assert!(!store.app("app").await.unwrap().unwrap().enabled);
    assert!(!store.set_app_enabled("nope", false).await.unwrap());
    assert!(store.set_app_secret_hash("app", "h").await.unwrap());
    assert_eq!(
        store
            .app("app")
            .await
            .unwrap()
            .unwrap()
            .secret_hash
            .as_deref(),
        Some("h")
    );
    assert_eq!(store.apps().await.unwrap().len(), 1);

    // users
    let user = User {
        login: "alice".into(),
        id: "00000000-0000-0000-0000-000000000001".into(),
        name: "Alice".into(),
        email: "alice@example.com".into(),
        user_type: "InternalUser".into(),
        is_admin: false,
        locale: "en-US".into(),
        password_hash: None,
    };
    store.insert_user(&user).await.unwrap();
    assert!(matches!(
        store.insert_user(&user).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.user("alice").await.unwrap(), Some(user));
    assert_eq!(store.users().await.unwrap().len(), 1);

    // keys
    assert!(
        store
            .insert_first_signing_key(&key("K1", 10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_first_signing_key(&key("K2", 11))
            .await
            .unwrap()
    );
    store
        .rotate_signing_key(&key("K3", 20), 5000)
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["K3", "K1"]
    );
    assert_eq!(keys[0].retire_at, None);
    assert_eq!(keys[1].retire_at, Some(5000));

    // reference tokens, revocation and the feed
    store
        .insert_reference_token(&token("id1", "h1", 1000))
        .await
        .unwrap();
    store
        .insert_reference_token(&token("id2", "h2", 2000))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_reference_token(&token("id1", "h1", 1000))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.reference_token("h1").await.unwrap().unwrap().id,
        "id1"
    );
    // A token bound to a DPoP key keeps the key's thumbprint.
    let bound = ReferenceToken {
        jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        ..token("id3", "h3", 3000)
    };
    store.insert_reference_token(&bound).await.unwrap();
    assert_eq!(
        store.reference_token("h3").await.unwrap(),
        Some(bound.clone())
    );
    assert_eq!(
        store
            .reference_token_context("h3")
            .await
            .unwrap()
            .map(|c| c.token.jkt),
        Some(bound.jkt)
    );
    assert_eq!(
        store.reference_token("h1").await.unwrap().unwrap().jkt,
        None
    );
    store.record_token_use(&[("h1".into(), 150)]).await.unwrap();
    assert_eq!(
        store
            .reference_token("h1")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(150)
    );
    let revoked = store
        .revoke_reference_token("id1", 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.hash, "h1");
    assert!(
        store
            .revoke_reference_token("h1", 201)
            .await
            .unwrap()
            .is_none(),
        "second revocation is a no-op"
    );
    assert_eq!(
        store
            .reference_token("h1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(200)
    );
    assert!(
        store
            .revoke_reference_token("h2", 202)
            .await
            .unwrap()
            .is_some(),
        "by hash"
    );
    assert!(store.revoke_jti("J1", 3000, 203).await.unwrap());
    assert!(!store.revoke_jti("J1", 3000, 204).await.unwrap());
    assert!(store.jti_revoked("J1").await.unwrap());
    assert!(!store.jti_revoked("J2").await.unwrap());
    let feed = store.feed(0, 10).await.unwrap();
    assert_eq!(feed.len(), 3);
    assert_eq!(feed[0].event.kind, RevocationKind::TokenSha256);
    assert_eq!(feed[0].event.value, "h1");
    assert_eq!(feed[0].event.expires_at, 1000);
    assert_eq!(feed[2].event.kind, RevocationKind::Jti);
    assert!(feed[0].seq < feed[1].seq && feed[1].seq < feed[2].seq);
    let after = store.feed(feed[0].seq, 10).await.unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(store.feed(feed[0].seq, 1).await.unwrap().len(), 1);
    assert_eq!(store.reference_tokens().await.unwrap().len(), 3);
    // an app change is published with the time before which it voids
    let change = erpgate::revocation::RevocationEvent {
        kind: RevocationKind::ClientId,
        value: "my app".into(),
        issued_before: Some(205),
        expires_at: 3000,
    };
    store.publish_revocation(&change).await.unwrap();
    let last = store.feed(feed[2].seq, 10).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].event, change);

    // cleanup removes what has expired, in batches
    assert_eq!(
        store.purge_expired(1500, 100).await.unwrap(),
        2,
        "h1 and its feed event"
    );
    assert!(store.reference_token("h1").await.unwrap().is_none());
    assert!(store.reference_token("h2").await.unwrap().is_some());
    let removed = store.purge_expired(10_000, 1).await.unwrap();
    assert!(
        (1..=3).contains(&removed),
        "one per kind at most: {removed}"
    );
    while store.purge_expired(10_000, 1).await.unwrap() > 0 {}
    assert!(store.feed(0, 10).await.unwrap().is_empty());
    assert!(!store.jti_revoked("J1").await.unwrap());
    grants::grants(store).await;
    records::records(store).await;
    sessions::license(store).await;
    sessions::signin_state(store).await;
    records::declared(store).await;
    sessions::identity_expiry(store).await;
    grants::refresh_reuse(store).await;
}

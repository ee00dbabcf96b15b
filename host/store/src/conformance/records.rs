//! The emulated API's records, and updates to apps and users that a
//! configuration file declares.

use erpgate::ScopeSet;

use super::fixtures::refresh;
use crate::records::Redemption;
use crate::records::{TrustedApp, User};
use crate::{Store, StoreError};

/// `update_app` and `update_user_profile`: what the configuration file
/// declares replaces the stored record, but not its creation time, subject
/// id or password; disabling kills the app's refresh tokens.
pub(super) async fn declared(store: &dyn Store) {
    let mut app = store.app("app").await.unwrap().unwrap();
    app.name = "Renamed".into();
    app.scope = ScopeSet::parse("read").unwrap();
    app.redirect_uris = vec!["https://b/cb".into()];
    app.basic_auth_allowed = true;
    app.enabled = true;
    app.internal = true;
    app.public_refresh_tokens = true;
    app.require_dpop = true;
    app.created_at = 999;
    assert!(store.update_app(&app).await.unwrap());
    let stored = store.app("app").await.unwrap().unwrap();
    assert_eq!(stored.created_at, 1, "the creation time stays");
    assert_eq!(
        TrustedApp {
            created_at: 999,
            ..stored
        },
        app
    );
    assert!(
        !store
            .update_app(&TrustedApp::new("nope", "", 1))
            .await
            .unwrap()
    );
    store
        .insert_refresh_token(&refresh("d1", "GD", "SD"))
        .await
        .unwrap();
    app.enabled = false;
    assert!(store.update_app(&app).await.unwrap());
    assert!(matches!(
        store
            .rotate_refresh_token("d1", "d2", 130, None)
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));

    let before = store.user("alice").await.unwrap().unwrap();
    let changed = User {
        id: "another-id".into(),
        name: "Alice B".into(),
        email: "b@example.com".into(),
        user_type: "ExternalCommunityUser".into(),
        is_admin: true,
        locale: "bg-BG".into(),
        password_hash: Some("other".into()),
        ..before.clone()
    };
    assert!(store.update_user_profile(&changed).await.unwrap());
    let after = store.user("alice").await.unwrap().unwrap();
    assert_eq!(
        after,
        User {
            id: before.id.clone(),
            password_hash: before.password_hash.clone(),
            ..changed.clone()
        }
    );
    assert!(
        !store
            .update_user_profile(&User {
                login: "nobody".into(),
                ..changed
            })
            .await
            .unwrap()
    );
}

/// The emulated ERP API's records.
pub(super) async fn records(store: &dyn Store) {
    store
        .insert_record("Crm_Customers", "b", r#"{"Id":"b"}"#)
        .await
        .unwrap();
    store
        .insert_record("Crm_Customers", "a", r#"{"Id":"a"}"#)
        .await
        .unwrap();
    store
        .insert_record("Other", "a", r#"{"Id":"x"}"#)
        .await
        .unwrap();
    assert!(matches!(
        store.insert_record("Crm_Customers", "a", "{}").await,
        Err(StoreError::Conflict(_))
    ));
    let all = store.records("Crm_Customers").await.unwrap();
    assert_eq!(
        all.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(
        store
            .update_record("Crm_Customers", "a", r#"{"Id":"a","N":1}"#)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_record("Crm_Customers", "z", "{}")
            .await
            .unwrap()
    );
    assert_eq!(
        store.record("Crm_Customers", "a").await.unwrap().as_deref(),
        Some(r#"{"Id":"a","N":1}"#)
    );
    assert_eq!(
        store.record("Other", "a").await.unwrap().as_deref(),
        Some(r#"{"Id":"x"}"#)
    );
    assert!(store.delete_record("Crm_Customers", "a").await.unwrap());
    assert!(!store.delete_record("Crm_Customers", "a").await.unwrap());
    assert!(store.record("Crm_Customers", "a").await.unwrap().is_none());
}

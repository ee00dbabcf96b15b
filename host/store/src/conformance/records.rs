//! The emulated API's records.

use crate::{Store, StoreError};

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

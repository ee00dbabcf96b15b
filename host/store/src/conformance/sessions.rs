//! The license table and sign-in state: what replicas share about who is in.

use crate::Store;
use crate::records::{IDLE_TIMEOUT_S, License, Origin, SERVICE_LIFETIME_S};

use super::fixtures::*;

/// The ERP license table: sessions on first use, slots, reserved seats,
/// sliding and absolute timeouts.
pub(super) async fn license(store: &dyn Store) {
    // Three slots, one reserved for admin: two shared.
    let license = License {
        slots: 3,
        reserved_accounts: vec!["admin".into()],
    };
    let enter = |key: &'static str, login: &'static str, origin: Origin, now: u64| {
        let license = license.clone();
        async move {
            store
                .enter_api_session(&candidate(key, login, origin, now), &license, now)
                .await
                .unwrap()
        }
    };
    let a = enter("sid:A", "alice", Origin::User, 0).await.unwrap();
    assert!(!a.reserved);
    let again = enter("sid:A", "alice", Origin::User, 10).await.unwrap();
    assert_eq!((again.id.as_str(), again.last_seen), (a.id.as_str(), 10));
    enter("jti:S", "svc", Origin::Service, 0).await.unwrap();
    assert!(
        enter("sid:B", "bob", Origin::User, 0).await.is_none(),
        "full"
    );
    // The reserved account gets in although the shared slots are full…
    assert!(
        enter("sid:R", "admin", Origin::User, 0)
            .await
            .unwrap()
            .reserved
    );
    // …but a second session of admin competes for the shared ones.
    assert!(enter("sid:R2", "admin", Origin::User, 0).await.is_none());
    assert_eq!(store.api_sessions(10).await.unwrap().len(), 3);
    // Resume by id touches it.
    assert_eq!(
        store
            .resume_api_session(&a.id, 1000)
            .await
            .unwrap()
            .unwrap()
            .last_seen,
        1000
    );
    assert!(
        store
            .resume_api_session("nope", 1000)
            .await
            .unwrap()
            .is_none()
    );
    // Sliding: alice idles out after 20 minutes; touching reset it.
    let open = |t: u64| async move {
        store
            .api_sessions(t)
            .await
            .unwrap()
            .iter()
            .any(|s| s.key == "sid:A")
    };
    assert!(open(1000 + IDLE_TIMEOUT_S - 1).await);
    assert!(!open(1000 + IDLE_TIMEOUT_S).await);
    assert!(
        store
            .resume_api_session(&a.id, 1000 + IDLE_TIMEOUT_S)
            .await
            .unwrap()
            .is_none(),
        "an idle session does not resume"
    );
    // Absolute: the service session closes after an hour even when busy.
    for t in (0..SERVICE_LIFETIME_S).step_by(600) {
        enter("jti:S", "svc", Origin::Service, t).await.unwrap();
    }
    let now = SERVICE_LIFETIME_S;
    assert!(
        !store
            .api_sessions(now)
            .await
            .unwrap()
            .iter()
            .any(|s| s.key == "jti:S")
    );
    // Dead sessions free their slots at the next entry.
    enter("sid:B", "bob", Origin::User, now).await.unwrap();
    enter("sid:C", "carol", Origin::User, now).await.unwrap();
    assert!(enter("sid:D", "dave", Origin::User, now).await.is_none());
    // Closing by key or by id frees a slot at once.
    assert!(store.close_api_session("sid:B").await.unwrap());
    assert!(!store.close_api_session("sid:B").await.unwrap());
    let d = enter("sid:D", "dave", Origin::User, now).await.unwrap();
    assert!(store.close_api_session(&d.id).await.unwrap());
    enter("sid:R", "admin", Origin::User, now + 1)
        .await
        .unwrap();
    let listed = store.api_sessions(now + 1).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.login.as_str()).collect::<Vec<_>>(),
        ["carol", "admin"],
        "oldest first; admin idled out long ago and reopened"
    );
    assert_eq!(listed[0].origin, Origin::User);
    assert_eq!(listed[0].client_id.as_deref(), Some("app"));
    assert!(listed[1].reserved && !listed[0].reserved);
    while store
        .purge_expired(now + 10 * SERVICE_LIFETIME_S, 100)
        .await
        .unwrap()
        > 0
    {}
    assert!(store.api_sessions(now).await.unwrap().is_empty());
}

/// Sign-in state that replicas share: the cookie key, sign-ins between
/// their pages, failed-login counters.
pub(super) async fn signin_state(store: &dyn Store) {
    assert_eq!(
        store.shared_secret("cookie", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        store.shared_secret("cookie", "second").await.unwrap(),
        "first",
        "the first value stays"
    );
    store.put_signin("p1", r#"{"a":1}"#, 200).await.unwrap();
    assert_eq!(
        store.signin("p1", 100).await.unwrap().as_deref(),
        Some(r#"{"a":1}"#)
    );
    store.put_signin("p1", r#"{"a":2}"#, 300).await.unwrap();
    assert_eq!(
        store.signin("p1", 250).await.unwrap().as_deref(),
        Some(r#"{"a":2}"#),
        "replaced"
    );
    assert!(store.signin("p1", 300).await.unwrap().is_none(), "expired");
    store.put_signin("p1", "{}", 300).await.unwrap();
    assert_eq!(
        store.take_signin("p1", 100).await.unwrap().as_deref(),
        Some("{}")
    );
    assert!(
        store.take_signin("p1", 100).await.unwrap().is_none(),
        "taken once"
    );
    assert!(store.signin("p1", 100).await.unwrap().is_none());
    store.put_signin("p3", "{}", 300).await.unwrap();
    assert!(
        store.take_signin("p3", 300).await.unwrap().is_none(),
        "expired"
    );

    for n in 1..=3 {
        assert_eq!(
            store.add_login_failure("u:alice", 1000, 900).await.unwrap(),
            n
        );
    }
    assert_eq!(store.login_failures("u:alice", 1899).await.unwrap(), 3);
    assert_eq!(
        store.login_failures("u:alice", 1900).await.unwrap(),
        0,
        "window over"
    );
    assert_eq!(
        store.add_login_failure("u:alice", 1900, 900).await.unwrap(),
        1,
        "a new window"
    );
    assert_eq!(store.login_failures("u:bob", 1000).await.unwrap(), 0);
    store.clear_login_failures("u:alice").await.unwrap();
    assert_eq!(store.login_failures("u:alice", 1900).await.unwrap(), 0);
    store.put_signin("p2", "{}", 10).await.unwrap();
    store.add_login_failure("u:bob", 0, 10).await.unwrap();
    while store.purge_expired(100, 100).await.unwrap() > 0 {}
    assert!(store.signin("p2", 0).await.unwrap().is_none(), "purged");
    assert_eq!(store.login_failures("u:bob", 0).await.unwrap(), 0, "purged");
}

/// Identity sessions past their lifetime are found (to be ended), and ended
/// ones are purged once every token naming them has expired.
pub(super) async fn identity_expiry(store: &dyn Store) {
    let session = |sid: &str, auth_time: u64| crate::records::IdentitySession {
        sid: sid.into(),
        login: "alice".into(),
        auth_time,
        created_at: auth_time,
        ended_at: None,
    };
    for (sid, at) in [("EX2", 20_000), ("EX1", 10_000), ("EX3", 90_000)] {
        store.insert_session(&session(sid, at)).await.unwrap();
    }
    assert!(store.end_session("EX1", 30_000, 40_000).await.unwrap());
    let expired = store.expired_sessions(50_000, 10).await.unwrap();
    assert!(expired.contains(&"EX2".to_owned()), "{expired:?}");
    assert!(!expired.contains(&"EX1".to_owned()), "ended: {expired:?}");
    assert!(!expired.contains(&"EX3".to_owned()), "recent: {expired:?}");
    assert!(store.expired_sessions(50_000, 0).await.unwrap().is_empty());

    // Ended at 30 000: kept for ENDED_SESSION_KEEP_S, then purged.
    let keep = crate::ENDED_SESSION_KEEP_S;
    while store.purge_expired(30_000 + keep - 1, 100).await.unwrap() > 0 {}
    assert!(store.session("EX1").await.unwrap().is_some());
    while store.purge_expired(30_000 + keep + 1, 100).await.unwrap() > 0 {}
    assert!(store.session("EX1").await.unwrap().is_none(), "purged");
    assert!(
        store.session("EX2").await.unwrap().is_some(),
        "live ones stay"
    );
}

//! Interactive sign-in records: sessions, codes, refresh tokens, consents.

use erpgate::ScopeSet;
use erpgate::revocation::RevocationKind;

use crate::records::{AuthCode, Consent, IdentitySession, Redemption, RefreshToken};
use crate::{Store, StoreError};

use super::fixtures::*;

/// Interactive sign-in: sessions, single-use codes, refresh rotation and
/// family revocation, consents.
pub(super) async fn grants(store: &dyn Store) {
    // sessions
    let session = IdentitySession {
        sid: "S1".into(),
        login: "alice".into(),
        auth_time: 90,
        created_at: 90,
        ended_at: None,
    };
    store.insert_session(&session).await.unwrap();
    assert!(matches!(
        store.insert_session(&session).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.session("S1").await.unwrap(), Some(session));
    assert!(store.session("S0").await.unwrap().is_none());

    // codes: exactly one redemption
    let code = AuthCode {
        hash: "c1".into(),
        basis: basis("G1", "S1"),
        redirect_uri: "https://a/cb".into(),
        code_challenge: Some("challenge".into()),
        nonce: Some("n".into()),
        state: Some("s".into()),
        created_at: 100,
        expires_at: 400,
    };
    store.insert_auth_code(&code).await.unwrap();
    assert_eq!(
        store.redeem_auth_code("c1", 110).await.unwrap(),
        Redemption::Fresh(code.clone())
    );
    assert_eq!(
        store.redeem_auth_code("c1", 111).await.unwrap(),
        Redemption::Replayed(code)
    );
    assert_eq!(
        store.redeem_auth_code("c0", 111).await.unwrap(),
        Redemption::Unknown
    );

    // refresh rotation: the old token is consumed with the new one stored
    store
        .insert_refresh_token(&refresh("r1", "G1", "S1"))
        .await
        .unwrap();
    store.record_grant_jti("G1", "AJ1", 3000).await.unwrap();
    assert!(matches!(
        store.rotate_refresh_token("r1", "r2", 120, None).await.unwrap(),
        Redemption::Fresh(t) if t.hash == "r1"
    ));
    assert!(matches!(
        store.rotate_refresh_token("r1", "r3", 121, None).await.unwrap(),
        Redemption::Replayed(t) if t.hash == "r1"
    ));
    assert_eq!(
        store
            .rotate_refresh_token("r0", "r4", 121, None)
            .await
            .unwrap(),
        Redemption::Unknown
    );
    // a DPoP-bound refresh token keeps its key through every rotation
    let bound = RefreshToken {
        jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        ..refresh("rb1", "GB", "S1")
    };
    store.insert_refresh_token(&bound).await.unwrap();
    assert!(matches!(
        store.rotate_refresh_token("rb1", "rb2", 120, None).await.unwrap(),
        Redemption::Fresh(t) if t.jkt == bound.jkt
    ));
    assert_eq!(
        store.refresh_token("rb2").await.unwrap().unwrap().jkt,
        bound.jkt
    );
    // lookup by hash, live or dead: what RFC 7009 revocation reads
    let r1 = store.refresh_token("r1").await.unwrap().unwrap();
    assert_eq!((r1.basis.grant_id.as_str(), r1.hash.as_str()), ("G1", "r1"));
    assert_eq!(
        store.refresh_token("r2").await.unwrap().unwrap().basis,
        r1.basis
    );
    assert_eq!(store.refresh_token("r0").await.unwrap(), None);
    // replay kills the family: r2 and the recorded access token
    let before = store.feed(0, 100).await.unwrap().len();
    assert_eq!(store.revoke_grant("G1", 130).await.unwrap(), 2);
    assert!(store.jti_revoked("AJ1").await.unwrap());
    assert_eq!(store.feed(0, 100).await.unwrap().len(), before + 1);
    assert!(matches!(
        store
            .rotate_refresh_token("r2", "r5", 131, None)
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));
    assert_eq!(
        store.revoke_grant("G1", 132).await.unwrap(),
        0,
        "idempotent"
    );
    // What a redemption still issues under the revoked grant dies with it.
    assert!(
        !store
            .insert_refresh_token(&refresh("r7", "G1", "S1"))
            .await
            .unwrap(),
        "no refresh token under a revoked grant"
    );
    assert_eq!(
        store
            .rotate_refresh_token("r7", "r8", 133, None)
            .await
            .unwrap(),
        Redemption::Unknown
    );
    assert!(!store.record_grant_jti("G1", "AJ2", 5000).await.unwrap());
    assert!(store.jti_revoked("AJ2").await.unwrap(), "revoked at once");
    assert_eq!(
        store
            .feed(0, 100)
            .await
            .unwrap()
            .last()
            .unwrap()
            .event
            .value,
        "AJ2"
    );

    // ending a session kills its refresh tokens and tells the edge by sid
    store
        .insert_refresh_token(&refresh("r6", "G2", "S1"))
        .await
        .unwrap();
    // a fresh authentication in a live session moves its auth_time only
    let before = store.session("S1").await.unwrap().unwrap();
    assert!(store.reauthenticate_session("S1", 139).await.unwrap());
    let after = store.session("S1").await.unwrap().unwrap();
    assert_eq!(
        (after.auth_time, after.created_at),
        (139, before.created_at)
    );
    assert!(!store.reauthenticate_session("S-none", 139).await.unwrap());
    assert!(store.end_session("S1", 140, 3700).await.unwrap());
    assert!(!store.end_session("S1", 141, 3700).await.unwrap());
    assert!(
        !store.reauthenticate_session("S1", 142).await.unwrap(),
        "an ended session stays ended"
    );
    assert_eq!(
        store.session("S1").await.unwrap().unwrap().ended_at,
        Some(140)
    );
    let feed = store.feed(0, 100).await.unwrap();
    let last = &feed.last().unwrap().event;
    assert_eq!(
        (last.kind, last.value.as_str()),
        (RevocationKind::Sid, "S1")
    );
    assert!(matches!(
        store
            .rotate_refresh_token("r6", "r7", 142, None)
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));

    // a password change kills the user's refresh tokens and ends the user's
    // live identity sessions, telling the edge by sid
    store
        .insert_refresh_token(&refresh("r8", "G3", "S2"))
        .await
        .unwrap();
    let live = IdentitySession {
        sid: "S-reset".into(),
        login: "alice".into(),
        auth_time: 140,
        created_at: 140,
        ended_at: None,
    };
    store.insert_session(&live).await.unwrap();
    let before = store.feed(0, 1_000).await.unwrap().len();
    assert!(
        store
            .set_password_hash("alice", "new-hash", 150, 3_750)
            .await
            .unwrap()
    );
    assert_eq!(
        store.session("S-reset").await.unwrap().unwrap().ended_at,
        Some(150)
    );
    let feed = store.feed(0, 1_000).await.unwrap();
    assert_eq!(feed.len(), before + 1, "one sid event");
    let last = &feed.last().unwrap().event;
    assert_eq!((last.value.as_str(), last.expires_at), ("S-reset", 3_750));
    assert!(
        !store
            .set_password_hash("nobody", "x", 150, 3_750)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .user("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("new-hash")
    );
    assert!(matches!(
        store
            .rotate_refresh_token("r8", "r9", 151, None)
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));

    // disabling the app kills its refresh tokens for good
    store
        .insert_refresh_token(&refresh("ra", "G4", "S3"))
        .await
        .unwrap();
    assert!(store.set_app_enabled("app", false).await.unwrap());
    assert!(store.set_app_enabled("app", true).await.unwrap());
    assert!(matches!(
        store
            .rotate_refresh_token("ra", "rb", 152, None)
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));

    // consents
    let consent = Consent {
        login: "alice".into(),
        client_id: "app".into(),
        scopes: ScopeSet::parse("openid read").unwrap(),
        granted_at: 100,
    };
    assert!(store.consent("alice", "app").await.unwrap().is_none());
    store.save_consent(&consent).await.unwrap();
    let wider = Consent {
        scopes: ScopeSet::parse("openid read update").unwrap(),
        ..consent
    };
    store.save_consent(&wider).await.unwrap();
    assert_eq!(
        store.consent("alice", "app").await.unwrap(),
        Some(wider.clone())
    );
    assert_eq!(store.consents_of("alice").await.unwrap(), vec![wider]);
    assert!(store.consents_of("bob").await.unwrap().is_empty());
    // withdrawing the consent kills the user's refresh tokens for that app
    store
        .insert_refresh_token(&refresh("rc1", "G-consent", "S-consent"))
        .await
        .unwrap();
    assert!(store.revoke_consent("alice", "app", 160).await.unwrap());
    assert!(matches!(
        store
            .rotate_refresh_token("rc1", "rc2", 161, None)
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));
    assert!(!store.revoke_consent("alice", "app", 160).await.unwrap());
    assert!(store.consent("alice", "app").await.unwrap().is_none());

    // uninstalling an app: its refresh tokens die, its reference tokens are
    // revoked and its consents forgotten, so a reinstall inherits nothing
    store
        .insert_app(&crate::records::TrustedApp::new("gone", "Gone", 1))
        .await
        .unwrap();
    let mut refresh_token = refresh("rd1", "G-del", "S-del");
    refresh_token.basis.client_id = "gone".into();
    store.insert_refresh_token(&refresh_token).await.unwrap();
    let mut reference = token("T-del", "h-del", 100_000);
    reference.client_id = "gone".into();
    store.insert_reference_token(&reference).await.unwrap();
    store
        .save_consent(&Consent {
            login: "bob".into(),
            client_id: "gone".into(),
            scopes: ScopeSet::parse("read").unwrap(),
            granted_at: 165,
        })
        .await
        .unwrap();
    assert!(store.delete_app("gone", 170).await.unwrap());
    assert!(!store.delete_app("gone", 171).await.unwrap());
    assert!(store.app("gone").await.unwrap().is_none());
    assert!(store.app("app").await.unwrap().is_some(), "only that app");
    assert!(matches!(
        store
            .rotate_refresh_token("rd1", "rd2", 171, None)
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));
    let revoked = store.reference_token("h-del").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(170));
    assert!(store.consent("bob", "gone").await.unwrap().is_none());

    // cleanup covers codes and refresh tokens
    while store.purge_expired(100_000, 100).await.unwrap() > 0 {}
    assert_eq!(
        store.redeem_auth_code("c1", 100_001).await.unwrap(),
        Redemption::Unknown
    );
}

/// The reuse interval: a token rotated at or after `reuse_since` whose
/// successor is live and unused is rotated again (the successor dies);
/// never after the successor was used or killed, even within one second.
pub(super) async fn refresh_reuse(store: &dyn Store) {
    use crate::records::{Redemption, RefreshToken};
    let rotate = |hash: &'static str, next: &'static str, now: u64, since: Option<u64>| async move {
        matches!(
            store
                .rotate_refresh_token(hash, next, now, since)
                .await
                .unwrap(),
            Redemption::Fresh(RefreshToken { .. })
        )
    };
    store
        .insert_refresh_token(&refresh("u1", "GU", "SU"))
        .await
        .unwrap();
    assert!(rotate("u1", "u2", 500, Some(470)).await);
    // The client lost u2's response and presents u1 again within the interval.
    assert!(rotate("u1", "u3", 510, Some(480)).await);
    assert!(
        !rotate("u2", "u4", 511, Some(481)).await,
        "the unused successor died"
    );
    // Used successor, all in one second: a replay of its predecessor is one.
    assert!(rotate("u3", "u5", 520, Some(490)).await);
    assert!(rotate("u5", "u6", 520, Some(490)).await);
    assert!(!rotate("u3", "u7", 520, Some(490)).await, "u5 was used");
    // The replay above changed nothing: u6 still rotates; past the interval
    // its replay is one.
    assert!(rotate("u6", "u8", 600, Some(570)).await);
    assert!(!rotate("u6", "u9", 640, Some(610)).await);
    // Killed (a revocation, a sign-out, a password change): never revived.
    assert!(store.revoke_grant("GU", 650).await.unwrap() > 0);
    assert!(!rotate("u8", "ua", 651, Some(0)).await);
}

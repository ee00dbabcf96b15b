//! The store test suite: every backend must pass it unchanged.

use std::sync::Arc;

use erpgate::ScopeSet;
use erpgate::revocation::RevocationKind;

use super::{Store, StoreError};
use crate::records::{
    ApiSession, AuthCode, Consent, GrantBasis, GrantKind, IDLE_TIMEOUT_S, IdentitySession, License,
    Origin, Redemption, ReferenceToken, RefreshToken, SERVICE_LIFETIME_S, SigningKeyRecord,
    TrustedApp, User,
};

fn token(id: &str, hash: &str, expires_at: u64) -> ReferenceToken {
    ReferenceToken {
        id: id.into(),
        hash: hash.into(),
        kind: GrantKind::Pat,
        client_id: "app".into(),
        subject: "alice".into(),
        scopes: ScopeSet::parse("read").unwrap(),
        description: "ci".into(),
        creator: "alice".into(),
        created_at: 100,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    }
}

fn key(kid: &str, created_at: u64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        private_pem: format!("pem-{kid}"),
        created_at,
        retire_at: None,
    }
}

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
    assert_eq!(store.reference_tokens().await.unwrap().len(), 2);

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
    grants(store).await;
    records(store).await;
    license(store).await;
    signin_state(store).await;
}

fn candidate(key: &str, login: &str, origin: Origin, now: u64) -> ApiSession {
    ApiSession::open(key, login, Some("app".into()), origin, now)
}

/// The ERP license table: sessions on first use, slots, reserved seats,
/// sliding and absolute timeouts.
async fn license(store: &dyn Store) {
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
async fn signin_state(store: &dyn Store) {
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

/// Two handles on one empty backend (two replicas, or two processes on one
/// file) racing on every single-use or counted record. Each race must have
/// exactly one winner.
pub(crate) async fn race(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let stores = [a, b];
    let pick = |i: usize| stores[i % 2].clone();
    const TRIES: usize = 50;

    // One code, 50 redemptions split across both.
    let code = AuthCode {
        hash: "race-code".into(),
        basis: basis("g-race", "S-race"),
        redirect_uri: "https://a/cb".into(),
        code_challenge: None,
        nonce: None,
        state: None,
        created_at: 100,
        expires_at: 100_000,
    };
    pick(0).insert_auth_code(&code).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TRIES {
        let s = pick(i);
        tasks.spawn(async move { s.redeem_auth_code("race-code", 200).await.unwrap() });
    }
    let outcomes = tasks.join_all().await;
    let fresh = outcomes
        .iter()
        .filter(|r| matches!(r, Redemption::Fresh(_)))
        .count();
    assert_eq!(fresh, 1, "exactly one redemption");
    assert!(outcomes.iter().all(|r| !matches!(r, Redemption::Unknown)));

    // One refresh token, 50 rotations: one successor.
    pick(1)
        .insert_refresh_token(&refresh("race-rt", "g-race", "S-race"))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TRIES {
        let s = pick(i);
        tasks.spawn(async move {
            s.rotate_refresh_token("race-rt", &format!("race-rt-{i}"), 300)
                .await
                .unwrap()
        });
    }
    let fresh = tasks
        .join_all()
        .await
        .iter()
        .filter(|r| matches!(r, Redemption::Fresh(_)))
        .count();
    assert_eq!(fresh, 1, "exactly one rotation");

    // A replay revoking a grant while the winning redemption still issues
    // under it: whatever the order, the refresh token and the access token
    // end up dead.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (issuer, revoker) = (pick(i), pick(i + 1));
        tasks.spawn(async move {
            let grant = format!("g-issue-{i}");
            let rt = RefreshToken {
                hash: format!("rt-issue-{i}"),
                ..refresh("", &grant, "S-race")
            };
            let jti = format!("j-issue-{i}");
            let (stored, recorded, _) = tokio::join!(
                issuer.insert_refresh_token(&rt),
                issuer.record_grant_jti(&grant, &jti, 100_000),
                revoker.revoke_grant(&grant, 350),
            );
            let _ = (stored.unwrap(), recorded.unwrap());
            assert!(
                !matches!(
                    issuer
                        .rotate_refresh_token(&rt.hash, &format!("{}-next", rt.hash), 360)
                        .await
                        .unwrap(),
                    Redemption::Fresh(_)
                ),
                "a refresh token outlived its grant's revocation"
            );
            assert!(
                revoker.jti_revoked(&jti).await.unwrap(),
                "{jti} outlived it"
            );
        });
    }
    tasks.join_all().await;

    // One PAT, 50 revocations: one feed event; the other handle sees it.
    pick(0)
        .insert_reference_token(&token("race-pat", "race-pat-hash", 100_000))
        .await
        .unwrap();
    let before = pick(1).feed(0, 10_000).await.unwrap().len();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TRIES {
        let s = pick(i);
        tasks.spawn(async move {
            s.revoke_reference_token("race-pat", 400)
                .await
                .unwrap()
                .is_some()
        });
    }
    let revoked = tasks.join_all().await.iter().filter(|r| **r).count();
    assert_eq!(revoked, 1, "exactly one revocation");
    assert!(
        pick(1)
            .reference_token("race-pat-hash")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert_eq!(pick(1).feed(0, 10_000).await.unwrap().len(), before + 1);

    // The license count holds under 50 concurrent first uses.
    let license = License {
        slots: 5,
        reserved_accounts: vec!["admin".into()],
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TRIES {
        let (s, license) = (pick(i), license.clone());
        let login = if i % 10 == 0 { "admin" } else { "user" };
        tasks.spawn(async move {
            let c = candidate(&format!("sid:race-{i}"), login, Origin::User, 500);
            s.enter_api_session(&c, &license, 500).await.unwrap()
        });
    }
    let opened = tasks.join_all().await;
    let opened: Vec<&ApiSession> = opened.iter().flatten().collect();
    assert_eq!(opened.len(), 5, "five slots, five sessions");
    assert_eq!(opened.iter().filter(|s| s.reserved).count(), 1);
    assert_eq!(pick(0).api_sessions(500).await.unwrap().len(), 5);

    // Concurrent feed writers: every event lands once, in order, and a
    // reader that follows the cursor while they write misses none.
    let base = pick(0).feed(0, 10_000).await.unwrap();
    let cursor0 = base.last().map_or(0, |r| r.seq);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TRIES {
        let s = pick(i);
        tasks.spawn(async move {
            assert!(
                s.revoke_jti(&format!("race-jti-{i}"), 100_000, 600)
                    .await
                    .unwrap()
            );
        });
    }
    let reader = pick(1);
    let follow = tokio::spawn(async move {
        let (mut cursor, mut seen) = (cursor0, Vec::new());
        while seen.len() < TRIES {
            let rows = reader.feed(cursor, 7).await.unwrap();
            for row in rows {
                assert!(row.seq > cursor);
                cursor = row.seq;
                seen.push(row.event.value);
            }
            tokio::task::yield_now().await;
        }
        seen
    });
    tasks.join_all().await;
    let mut seen = tokio::time::timeout(std::time::Duration::from_secs(30), follow)
        .await
        .expect("the follower caught up")
        .unwrap();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), TRIES, "every event seen once by the follower");

    // Cleanup on both handles at once, in small batches: every expired row
    // goes exactly once and neither handle fails or waits on the other.
    for i in 0..150 {
        assert!(
            pick(i)
                .revoke_jti(&format!("old-{i}"), 10, 0)
                .await
                .unwrap()
        );
    }
    let purge = |s: Arc<dyn Store>| async move {
        let mut removed = 0;
        loop {
            match s.purge_expired(1000, 7).await.unwrap() {
                0 => return removed,
                n => removed += n,
            }
        }
    };
    let (x, y) = tokio::join!(purge(pick(0)), purge(pick(1)));
    assert_eq!(x + y, 300, "150 jtis and their 150 feed events, once each");
    assert!(!pick(1).jti_revoked("old-0").await.unwrap());

    // Two handles racing the first signing key of an empty store: one wins.
    let (ka, kb) = (key("RACE-A", 1), key("RACE-B", 1));
    let (sa, sb) = (pick(0), pick(1));
    let (x, y) = tokio::join!(
        sa.insert_first_signing_key(&ka),
        sb.insert_first_signing_key(&kb)
    );
    assert!(x.unwrap() ^ y.unwrap(), "exactly one first key");
    assert_eq!(pick(1).signing_keys().await.unwrap().len(), 1);
}

/// The emulated ERP API's records.
async fn records(store: &dyn Store) {
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

fn basis(grant: &str, sid: &str) -> GrantBasis {
    GrantBasis {
        grant_id: grant.into(),
        client_id: "app".into(),
        login: "alice".into(),
        sid: sid.into(),
        scopes: ScopeSet::parse("openid read offline_access").unwrap(),
        auth_time: 90,
    }
}

fn refresh(hash: &str, grant: &str, sid: &str) -> RefreshToken {
    RefreshToken {
        hash: hash.into(),
        basis: basis(grant, sid),
        created_at: 100,
        expires_at: 5000,
    }
}

/// Interactive sign-in: sessions, single-use codes, refresh rotation and
/// family revocation, consents.
async fn grants(store: &dyn Store) {
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
        store.rotate_refresh_token("r1", "r2", 120).await.unwrap(),
        Redemption::Fresh(t) if t.hash == "r1"
    ));
    assert!(matches!(
        store.rotate_refresh_token("r1", "r3", 121).await.unwrap(),
        Redemption::Replayed(t) if t.hash == "r1"
    ));
    assert_eq!(
        store.rotate_refresh_token("r0", "r4", 121).await.unwrap(),
        Redemption::Unknown
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
        store.rotate_refresh_token("r2", "r5", 131).await.unwrap(),
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
        store.rotate_refresh_token("r7", "r8", 133).await.unwrap(),
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
        store.rotate_refresh_token("r6", "r7", 142).await.unwrap(),
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
        store.rotate_refresh_token("r8", "r9", 151).await.unwrap(),
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
        store.rotate_refresh_token("ra", "rb", 152).await.unwrap(),
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
        store.rotate_refresh_token("rc1", "rc2", 161).await.unwrap(),
        Redemption::Replayed(_)
    ));
    assert!(!store.revoke_consent("alice", "app", 160).await.unwrap());
    assert!(store.consent("alice", "app").await.unwrap().is_none());

    // cleanup covers codes and refresh tokens
    while store.purge_expired(100_000, 100).await.unwrap() > 0 {}
    assert_eq!(
        store.redeem_auth_code("c1", 100_001).await.unwrap(),
        Redemption::Unknown
    );
}

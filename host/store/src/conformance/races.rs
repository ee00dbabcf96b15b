//! Two handles on one backend racing: exactly one winner each time.

use std::sync::Arc;

use crate::Store;
use crate::records::{ApiSession, AuthCode, License, Origin, Redemption, RefreshToken};

use super::fixtures::*;

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
            s.rotate_refresh_token("race-rt", &format!("race-rt-{i}"), 300, None)
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
                        .rotate_refresh_token(&rt.hash, &format!("{}-next", rt.hash), 360, None)
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

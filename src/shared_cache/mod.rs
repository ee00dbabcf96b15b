//! The cache shared by every engine instance of one host, behind each
//! instance's local caches: Envoy's shared data, which all worker VMs of a
//! plugin see.
//!
//! The adapter supplies the store through [`SharedCache`]; the engine decides
//! what goes in. The cache is direct-mapped: a token's SHA-256 picks one of a
//! fixed number of slots per space, so its memory is bounded even though
//! proxy-wasm shared data can never delete a key. A slot holds one entry, with
//! the full token hash, so a collision is a miss, never a wrong answer. Writes
//! use compare-and-swap on the slot's version. Keys carry a namespace made
//! of the policy's fingerprint and what the adapter says besides decides a
//! verdict (the clusters, the introspection client): plugins that differ in
//! any of it never read each other's entries.

use crate::cache::TokenHash;
use crate::principal::Principal;
use crate::time::Time;

mod replay;
mod slot;

pub(crate) use replay::{PER_SLOT as REPLAYS_PER_SLOT, first_use};

/// A key-value store with versions, shared across engine instances.
pub trait SharedCache: Send {
    /// The value under `key` and its version, if the key exists.
    fn get(&mut self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Stores `value` under `key` if its version is still `version`
    /// (`0`: unconditionally). `false` when the version moved on or the
    /// store refused.
    fn set(&mut self, key: &str, value: &[u8], version: u32) -> bool;
}

/// How often a write retries after losing a compare-and-swap race.
const CAS_ATTEMPTS: usize = 3;

/// Which cache a slot belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Space {
    /// Verified JWTs.
    Jwt,
    /// Introspected reference tokens.
    Reference,
    /// DPoP proofs seen.
    Dpop,
}

impl Space {
    fn name(self) -> &'static str {
        match self {
            Space::Jwt => "jwt",
            Space::Reference => "ref",
            Space::Dpop => "dpop",
        }
    }
}

/// A shared entry as the engine sees it.
pub(crate) struct SharedEntry {
    pub principal: Option<Principal>,
    pub fresh_until: Time,
    pub stale_until: Time,
}

/// The namespace of one plugin's shared entries: the policy's fingerprint
/// and every part of `deployment`, length-prefixed, hashed.
pub(crate) fn namespace(fingerprint: &str, deployment: &[&[u8]]) -> String {
    let mut text = Vec::new();
    for part in std::iter::once(fingerprint.as_bytes()).chain(deployment.iter().copied()) {
        text.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_le_bytes());
        text.extend_from_slice(part);
    }
    hex::encode(TokenHash::of_bytes(&text).0.get(..8).unwrap_or_default())
}

/// The slot key for a token.
pub(crate) fn key(namespace: &str, space: Space, hash: &TokenHash, slots: usize) -> String {
    let mut head = [0u8; 8];
    head.copy_from_slice(hash.0.get(..8).unwrap_or(&[0; 8]));
    let slots = u64::try_from(slots.max(1)).unwrap_or(u64::MAX);
    let slot = u64::from_le_bytes(head) % slots;
    format!("erpgate.v3.{namespace}.{}.{slot}", space.name())
}

/// The fresh shared entry for `hash`, if its slot holds one.
pub(crate) fn load(
    cache: &mut dyn SharedCache,
    key: &str,
    hash: &TokenHash,
    now: Time,
) -> Option<SharedEntry> {
    let (bytes, _) = cache.get(key)?;
    let slot = slot::decode(&bytes, hash)?;
    let fresh_until = Time::from_millis(slot.fresh_until);
    (now < fresh_until).then(|| SharedEntry {
        principal: slot.principal,
        fresh_until,
        stale_until: Time::from_millis(slot.stale_until.max(slot.fresh_until)),
    })
}

/// Publishes an entry. The slot keeps a fresher entry for the same token;
/// any other occupant is replaced (direct-mapped).
pub(crate) fn store(
    cache: &mut dyn SharedCache,
    key: &str,
    hash: &TokenHash,
    principal: Option<&Principal>,
    fresh_until: Time,
    stale_until: Time,
) {
    let fresh = fresh_until.millis();
    let bytes = slot::encode(hash, fresh, stale_until.millis(), principal);
    for _ in 0..CAS_ATTEMPTS {
        let version = match cache.get(key) {
            Some((current, version)) => {
                if slot::decode(&current, hash).is_some_and(|c| c.fresh_until >= fresh) {
                    return;
                }
                version
            }
            None => 0,
        };
        if cache.set(key, &bytes, version) {
            return;
        }
    }
}

/// Empties the slot if it holds `hash` (revocation).
pub(crate) fn clear(cache: &mut dyn SharedCache, key: &str, hash: &TokenHash) {
    for _ in 0..CAS_ATTEMPTS {
        let Some((current, version)) = cache.get(key) else {
            return;
        };
        let holds = slot::peek(&current).is_some_and(|(h, _)| h == *hash);
        if !holds || cache.set(key, b"", version) {
            return;
        }
    }
}

/// An in-memory store with proxy-wasm's CAS semantics, which can be told to
/// lose the next races.
#[cfg(test)]
pub(crate) mod memory {
    use std::collections::HashMap;

    use super::SharedCache;

    #[derive(Default)]
    pub(crate) struct Memory {
        pub(crate) data: HashMap<String, (Vec<u8>, u32)>,
        pub(crate) lose: usize,
    }

    impl SharedCache for Memory {
        fn get(&mut self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.data.get(key).cloned()
        }
        fn set(&mut self, key: &str, value: &[u8], version: u32) -> bool {
            if self.lose > 0 {
                self.lose -= 1;
                return false;
            }
            let entry = self.data.entry(key.into()).or_insert((Vec::new(), 0));
            if version != 0 && version != entry.1 {
                return false;
            }
            *entry = (value.to_vec(), entry.1 + 1);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeSet;

    use super::memory::Memory;

    fn principal(subject: &str) -> Principal {
        let text = crate::PrincipalText {
            subject,
            ..Default::default()
        };
        Principal::new(
            crate::TokenKind::Pat,
            &text,
            ScopeSet::parse("read").unwrap(),
            100,
        )
    }

    #[test]
    fn round_trip_collision_freshness_and_clear() {
        let mut cache = Memory::default();
        let (a, b) = (TokenHash::of("a"), TokenHash::of("b"));
        // One slot: every token collides.
        let (ka, kb) = (
            key("fp", Space::Reference, &a, 1),
            key("fp", Space::Reference, &b, 1),
        );
        assert_eq!(ka, kb);
        let t = Time::from_secs;
        store(&mut cache, &ka, &a, Some(&principal("alice")), t(10), t(20));
        let got = load(&mut cache, &ka, &a, t(5)).unwrap();
        assert_eq!(got.principal.unwrap().subject(), "alice");
        assert_eq!((got.fresh_until, got.stale_until), (t(10), t(20)));
        assert!(
            load(&mut cache, &ka, &a, t(10)).is_none(),
            "stale is a miss"
        );
        assert!(
            load(&mut cache, &kb, &b, t(5)).is_none(),
            "another token's slot"
        );
        // An older entry for the same token does not replace a fresher one.
        store(&mut cache, &ka, &a, Some(&principal("old")), t(8), t(8));
        assert_eq!(
            load(&mut cache, &ka, &a, t(5))
                .unwrap()
                .principal
                .unwrap()
                .subject(),
            "alice"
        );
        // Another token takes the slot over.
        store(&mut cache, &kb, &b, None, t(10), t(10));
        assert!(load(&mut cache, &ka, &a, t(5)).is_none());
        assert!(load(&mut cache, &kb, &b, t(5)).unwrap().principal.is_none());
        // Clearing only empties the slot for its own token.
        clear(&mut cache, &ka, &a);
        assert!(load(&mut cache, &kb, &b, t(5)).is_some());
        clear(&mut cache, &kb, &b);
        assert!(load(&mut cache, &kb, &b, t(5)).is_none());
    }

    #[test]
    fn cas_races_retry_then_give_up() {
        let a = TokenHash::of("a");
        let k = key("fp", Space::Jwt, &a, 8);
        let mut cache = Memory {
            lose: CAS_ATTEMPTS - 1,
            ..Memory::default()
        };
        store(
            &mut cache,
            &k,
            &a,
            Some(&principal("alice")),
            Time::from_secs(10),
            Time::from_secs(10),
        );
        assert!(
            load(&mut cache, &k, &a, Time::from_secs(1)).is_some(),
            "won on the last attempt"
        );
        let b = TokenHash::of("b");
        let kb = key("fp", Space::Jwt, &b, 8);
        cache.lose = CAS_ATTEMPTS;
        store(
            &mut cache,
            &kb,
            &b,
            Some(&principal("bob")),
            Time::from_secs(10),
            Time::from_secs(10),
        );
        assert!(
            load(&mut cache, &kb, &b, Time::from_secs(1)).is_none(),
            "gave up"
        );
    }

    #[test]
    fn keys_are_namespaced_and_bounded() {
        let a = TokenHash::of("a");
        assert_ne!(key("p1", Space::Jwt, &a, 8), key("p2", Space::Jwt, &a, 8));
        assert_ne!(
            key("p1", Space::Jwt, &a, 8),
            key("p1", Space::Reference, &a, 8)
        );
        let mut slots = std::collections::HashSet::new();
        for i in 0..1000 {
            slots.insert(key("p", Space::Jwt, &TokenHash::of(&i.to_string()), 16));
        }
        assert_eq!(slots.len(), 16);
    }
}

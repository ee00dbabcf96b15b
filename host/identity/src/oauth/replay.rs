//! The DPoP proofs a host has seen (RFC 9449 §11.1): each `jti` is
//! accepted once while its proof could still be accepted at all.

use std::collections::HashMap;
use std::sync::Mutex;

/// How old a proof's `iat` may be.
pub const MAX_AGE_S: u64 = 300;
/// How far ahead of the host's clock a proof's `iat` may be.
pub const LEEWAY_S: u64 = 60;
/// The most proofs remembered at once; past it, after dropping the expired
/// ones, new proofs are refused rather than old ones forgotten.
const MAX_REMEMBERED: usize = 100_000;

/// The `jti`s seen, until their proofs are too old to be accepted anyway.
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

impl ReplayCache {
    /// Records a proof's `jti`; false when it was seen before (or the cache
    /// is full of live proofs).
    pub fn first_use(&self, jti_hash: [u8; 32], iat: u64, now: u64) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.get(&jti_hash).is_some_and(|&until| until >= now) {
            return false;
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= MAX_REMEMBERED {
                tracing::warn!("DPoP replay cache full; proof refused");
                return false;
            }
        }
        seen.insert(jti_hash, iat.saturating_add(MAX_AGE_S + LEEWAY_S));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_within_its_window() {
        let cache = ReplayCache::default();
        let jti = [7u8; 32];
        assert!(cache.first_use(jti, 1_000, 1_000));
        assert!(!cache.first_use(jti, 1_000, 1_100));
        // Once its proof is too old to be accepted, it is forgotten.
        assert!(cache.first_use(jti, 2_000, 1_000 + MAX_AGE_S + LEEWAY_S + 1));
    }
}

//! What DPoP leaves in the engine's keeping: a request's presentation
//! until its principal is known, and the proofs already seen.

use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::cache::TokenHash;
use crate::decision::Identity;

/// A request's `DPoP` presentation, kept until its principal is known
/// (across any call or host check the token needs first).
pub(crate) struct Presented {
    pub(super) proof: String,
    pub(super) token: String,
    /// SHA-256 of `token`, once the token's path has hashed it.
    pub(super) token_sha256: Option<TokenHash>,
    pub(super) method: String,
    pub(super) uri: Option<String>,
}

impl std::fmt::Debug for Presented {
    // Neither the proof nor the token is ever printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// A verified principal whose DPoP proof host crypto is checking: what the
/// allow needs, and what the replay cache records once the proof holds.
pub(crate) struct ProofWait {
    pub(super) identity: Arc<Identity>,
    pub(super) from_cache: bool,
    pub(super) replay_id: [u8; 32],
    pub(super) until: u64,
}

/// The proofs seen, by key and `jti`, until they are too old to pass anyway.
/// Bounded: past its size the least recently seen goes first.
#[derive(Debug)]
pub(crate) struct Replays(lru::LruCache<[u8; 32], u64>);

impl Replays {
    pub(crate) fn new(entries: usize) -> Self {
        Self(lru::LruCache::new(
            NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN),
        ))
    }

    /// Takes over the proofs `previous` saw, keeping this cache's bound.
    pub(super) fn adopt(&mut self, previous: Replays) {
        let cap = self.0.cap();
        self.0 = previous.0;
        self.0.resize(cap);
    }

    /// Records a proof; false when it was seen before and is still live.
    pub(super) fn first_use(&mut self, id: [u8; 32], until: u64, now: u64) -> bool {
        if self.0.get(&id).is_some_and(|&seen_until| seen_until >= now) {
            return false;
        }
        self.0.put(id, until);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Replays;

    #[test]
    fn a_proof_passes_once_while_live_and_a_reload_remembers_it() {
        let mut seen = Replays::new(2);
        assert!(seen.first_use([1; 32], 100, 10));
        assert!(!seen.first_use([1; 32], 100, 50));
        // Past its window it could not pass anyway; it is forgotten.
        assert!(seen.first_use([1; 32], 200, 101));
        let mut reloaded = Replays::new(1);
        reloaded.adopt(seen);
        assert!(!reloaded.first_use([1; 32], 200, 150));
        // The new bound holds: one entry, the least recently seen goes.
        assert!(reloaded.first_use([2; 32], 200, 150));
        assert!(reloaded.first_use([1; 32], 200, 150));
    }
}

//! The DPoP proofs every engine instance sharing the store has seen, so a
//! proof is single-use across an Envoy's worker VMs too. Direct-mapped like
//! the verdict slots (proxy-wasm shared data can never delete a key, so the
//! memory is bounded by the slot count): a slot holds a few proofs, each
//! until it could not pass anyway; a full slot forgets the one that
//! expires first.

use super::{CAS_ATTEMPTS, SharedCache};

/// Proofs one slot holds.
pub(crate) const PER_SLOT: usize = 4;
/// A proof's id and the second it stops mattering.
const ENTRY: usize = 32 + 8;

fn decode(bytes: &[u8]) -> Vec<([u8; 32], u64)> {
    if !bytes.len().is_multiple_of(ENTRY) || bytes.len() > PER_SLOT * ENTRY {
        // Not ours, or damaged: start the slot afresh.
        return Vec::new();
    }
    bytes
        .chunks_exact(ENTRY)
        .filter_map(|e| {
            let (id, until) = e.split_at(32);
            Some((
                id.try_into().ok()?,
                u64::from_le_bytes(until.try_into().ok()?),
            ))
        })
        .collect()
}

/// Records proof `id` in the slot at `key` unless the slot holds it still
/// live; false for a replay, and when the store stays contended (fail
/// closed: the client sends a new proof).
pub(crate) fn first_use(
    cache: &mut dyn SharedCache,
    key: &str,
    id: &[u8; 32],
    until: u64,
    now: u64,
) -> bool {
    for _ in 0..CAS_ATTEMPTS {
        let (bytes, version) = cache.get(key).unwrap_or_default();
        let mut entries = decode(&bytes);
        entries.retain(|(_, live_until)| *live_until >= now);
        if entries.iter().any(|(seen, _)| seen == id) {
            return false;
        }
        if entries.len() >= PER_SLOT
            && let Some(first) = entries
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, u))| *u)
                .map(|(i, _)| i)
        {
            entries.remove(first);
        }
        entries.push((*id, until));
        let mut out = Vec::with_capacity(entries.len() * ENTRY);
        for (seen, live_until) in &entries {
            out.extend_from_slice(seen);
            out.extend_from_slice(&live_until.to_le_bytes());
        }
        if cache.set(key, &out, version) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::memory::Memory;
    use super::*;

    #[test]
    fn a_proof_passes_once_across_instances_until_it_expires() {
        let mut store = Memory::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(first_use(&mut store, "k", &a, 100, 10));
        // Another instance on the same store: a replay.
        assert!(!first_use(&mut store, "k", &a, 100, 20));
        assert!(first_use(&mut store, "k", &b, 100, 20));
        // Past its window the proof could not pass anyway: forgotten.
        assert!(first_use(&mut store, "k", &a, 200, 101));
    }

    #[test]
    fn a_full_slot_forgets_what_expires_first_and_contention_fails_closed() {
        let mut store = Memory::default();
        for i in 0..PER_SLOT {
            let until = 100 + u64::try_from(i).unwrap();
            assert!(first_use(&mut store, "k", &[i as u8; 32], until, 1));
        }
        assert!(first_use(&mut store, "k", &[9; 32], 500, 1));
        // The one that expired first is gone; the others are still seen.
        assert!(first_use(&mut store, "k", &[0; 32], 100, 1));
        assert!(!first_use(&mut store, "k", &[9; 32], 500, 1));
        // A damaged slot starts afresh; a store that keeps losing the race
        // refuses.
        store.data.insert("d".into(), (vec![7; 13], 1));
        assert!(first_use(&mut store, "d", &[1; 32], 100, 1));
        store.lose = CAS_ATTEMPTS;
        assert!(!first_use(&mut store, "d", &[2; 32], 100, 1));
    }
}

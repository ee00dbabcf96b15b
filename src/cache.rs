//! Bounded TTL caches keyed by a hash of the credential: SHA-256, or for
//! the JWT verdict cache a keyed SipHash ([`CacheKey`]). The raw token is
//! never stored. Eviction is least-recently-used; expiry is checked against
//! the `now` the caller passes.

use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroUsize;

use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::time::Time;

/// SHA-256 of a credential: the only form in which a token is remembered.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a credential.
    pub fn of(token: &str) -> Self {
        Self::of_bytes(token.as_bytes())
    }

    /// Hashes raw bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Lowercase hex, as the revocation feed writes it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenHash({})",
            self.to_hex().get(..12).unwrap_or_default()
        )
    }
}

/// SipHash-2-4 with 128-bit output of a credential under a secret key the
/// adapter drew at random: what the JWT verdict cache is keyed by. A JWT
/// is hundreds of bytes, and SHA-256 of it was the largest single cost of a
/// cache hit inside wasm; SipHash does about a tenth of the work. Without
/// the key nobody can compute a token's value, so no one can make a token
/// that lands on another's entry (that would be a 128-bit PRF forgery).
/// SHA-256 is still taken on a miss: the revocation feed and the shared
/// cache name tokens by it, and the entry keeps it for the next hit.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(u128);

impl CacheKey {
    /// The key of `token` under `secret`.
    pub fn of(secret: &[u8; 16], token: &[u8]) -> Self {
        let mut hasher = siphasher::sip128::SipHasher24::new_with_key(secret);
        std::hash::Hasher::write(&mut hasher, token);
        Self(siphasher::sip128::Hasher128::finish128(&hasher).as_u128())
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

/// The key is already a uniform hash, so its first eight bytes are the bucket hash.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type Build = BuildHasherDefault<DigestHasher>;

/// A cached value with its lifetimes.
#[derive(Debug, Clone)]
pub struct Entry<V> {
    /// What was remembered about the credential.
    pub value: V,
    /// Served normally until this time.
    pub fresh_until: Time,
    /// Served under `serve_stale` until this time (≥ `fresh_until`).
    pub stale_until: Time,
}

/// A bounded cache of values keyed by [`TokenHash`] (or [`CacheKey`]).
pub struct TtlCache<V, K = TokenHash> {
    inner: LruCache<K, Entry<V>, Build>,
}

impl<V, K: std::hash::Hash + Eq> std::fmt::Debug for TtlCache<V, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("len", &self.inner.len())
            .field("cap", &self.inner.cap())
            .finish()
    }
}

impl<V, K: std::hash::Hash + Eq> TtlCache<V, K> {
    /// A cache holding at most `max_entries` (at least one).
    pub fn new(max_entries: usize) -> Self {
        let cap = NonZeroUsize::new(max_entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: LruCache::with_hasher(cap, Build::default()),
        }
    }

    /// The fresh entry for `key`, if any. An entry past even its stale time is dropped.
    pub fn get(&mut self, key: &K, now: Time) -> Option<&V> {
        let stale_until = self.inner.peek(key).map(|e| e.stale_until)?;
        if now >= stale_until {
            self.inner.pop(key);
            return None;
        }
        self.inner
            .get(key)
            .filter(|e| now < e.fresh_until)
            .map(|e| &e.value)
    }

    /// The entry for `key` even past its TTL, while within its stale window.
    pub fn get_stale(&mut self, key: &K, now: Time) -> Option<&V> {
        self.inner
            .get(key)
            .filter(|e| now < e.stale_until)
            .map(|e| &e.value)
    }

    /// Stores a value. A zero-length lifetime stores nothing.
    pub fn insert(&mut self, key: K, value: V, fresh_until: Time, stale_until: Time, now: Time) {
        if fresh_until <= now {
            return;
        }
        self.inner.put(
            key,
            Entry {
                value,
                fresh_until,
                stale_until: stale_until.max(fresh_until),
            },
        );
    }

    /// Drops an entry at once (revocation).
    pub fn remove(&mut self, key: &K) -> bool {
        self.inner.pop(key).is_some()
    }

    /// Entries held, expired ones included until they are evicted.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    #[allow(missing_docs)]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Time {
        Time::from_secs(s)
    }

    #[test]
    fn expiry_and_bounds() {
        let mut c = TtlCache::new(2);
        let (a, b, d) = (TokenHash::of("a"), TokenHash::of("b"), TokenHash::of("d"));
        c.insert(a, 1, t(10), t(10), t(0));
        c.insert(b, 2, t(10), t(20), t(0));
        assert_eq!(c.get(&a, t(5)), Some(&1));
        c.insert(d, 3, t(10), t(10), t(0)); // evicts b, the least recently used
        assert_eq!(c.get(&b, t(5)), None);
        assert_eq!(c.get(&a, t(10)), None, "expired at fresh_until");
        assert_eq!(c.len(), 1);
        c.insert(b, 2, t(10), t(20), t(0));
        assert_eq!(c.get(&b, t(15)), None);
        assert_eq!(c.get_stale(&b, t(15)), Some(&2));
        assert!(c.remove(&b));
        c.insert(a, 9, t(5), t(5), t(5));
        assert_eq!(c.get(&a, t(5)), None, "zero lifetime is not stored");
    }

    #[test]
    fn cache_keys_depend_on_the_secret_and_every_byte() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        assert_eq!(CacheKey::of(&a, b"token"), CacheKey::of(&a, b"token"));
        assert_ne!(CacheKey::of(&a, b"token"), CacheKey::of(&b, b"token"));
        assert_ne!(CacheKey::of(&a, b"token"), CacheKey::of(&a, b"tokem"));
        assert_ne!(CacheKey::of(&a, b""), CacheKey::of(&a, b"\0"));
    }

    #[test]
    fn hex_round_trip() {
        let h = TokenHash::of("x");
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(TokenHash::from_hex("zz"), None);
    }
}

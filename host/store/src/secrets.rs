//! Secrets as the host handles them: random identifiers, and ERP.net's
//! SHA-256 hash of client secrets, compared in constant time. Human
//! passwords use Argon2 in the identity crate, never these.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A random identifier of `bytes` random bytes, uppercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rng(), buf.as_mut_slice());
    hex::encode_upper(buf)
}

/// A new client secret: 24 characters from `[A-Za-z0-9]` (about 143 bits),
/// the length ERP.net generates at install.
pub fn new_secret() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| {
            ALPHABET
                .get(rng.random_range(0..ALPHABET.len()))
                .copied()
                .map_or('x', char::from)
        })
        .collect()
}

/// ERP.net's secret hash: standard base64 of SHA-256 over the UTF-8 secret.
pub fn secret_hash(secret: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(secret.as_bytes()))
}

/// Compares a presented secret with a stored hash in constant time.
pub fn secret_matches(presented: &str, stored_hash: &str) -> bool {
    let presented = secret_hash(presented);
    // Both are 44-byte base64 strings; ct_eq also handles a length mismatch
    // without an early exit on content.
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erpnet_documented_hash() {
        // /tools/sha256?secret=DEMO on a real instance.
        assert_eq!(
            secret_hash("DEMO"),
            "T/AGymuI51LwjLeIFxRQXOs9IHnupDKs/ajhWODR2C4="
        );
        assert!(secret_matches(
            "DEMO",
            "T/AGymuI51LwjLeIFxRQXOs9IHnupDKs/ajhWODR2C4="
        ));
        assert!(!secret_matches(
            "demo",
            "T/AGymuI51LwjLeIFxRQXOs9IHnupDKs/ajhWODR2C4="
        ));
        assert!(!secret_matches("DEMO", ""));
    }
}

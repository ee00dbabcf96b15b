//! Portable RSA signature verification on `crypto-bigint`.
//!
//! The key (from the `rsa` crate, with its checks on `n` and `e`) holds its
//! Montgomery parameters, made once when the JWK is loaded. A public-key
//! operation needs no constant time, so RSASSA-PKCS1-v1_5 raises the
//! signature to `e` by plain square-and-multiply: 16 squarings and one
//! product for e = 65537, against about 36 products for the crate's
//! constant-time windowed exponentiation. The check then encodes the
//! expected message and compares (RFC 8017 §8.2.2). PSS goes through the
//! `rsa` crate: no ERP.net instance signs with it.

use crypto_bigint::BoxedUint;
use crypto_bigint::modular::BoxedMontyForm;
use rsa::pkcs8::AssociatedOid;
use rsa::signature::digest::FixedOutputReset;
use rsa::traits::PublicKeyParts;
use sha2::Digest;

/// An RSA public key from big-endian `n` (without leading zeros) and `e`.
pub(crate) fn public_key(n: &[u8], e: &[u8]) -> Option<rsa::PublicKey> {
    let n = BoxedUint::from_be_slice_vartime(n);
    let e = BoxedUint::from_be_slice_vartime(e);
    rsa::PublicKey::new(n, e).ok()
}

/// RSASSA-PKCS1-v1_5 with the hash `D`; `signature` must be exactly as long
/// as the modulus (the caller checks).
pub(crate) fn verify_pkcs1v15<D: Digest + AssociatedOid>(
    key: &rsa::PublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let k = key.size();
    let Some(em) = public_operation(key, signature, k) else {
        return false;
    };
    let scheme = rsa::Pkcs1v15Sign::new::<D>();
    let hashed = D::digest(message);
    let t_len = scheme.prefix.len() + hashed.len();
    // EM = 0x00 0x01 PS 0x00 T, PS at least eight 0xFF bytes.
    let Some(ps_len) = k.checked_sub(t_len + 3).filter(|len| *len >= 8) else {
        return false;
    };
    let mut expected = Vec::with_capacity(k);
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(2 + ps_len, 0xFF);
    expected.push(0x00);
    expected.extend_from_slice(&scheme.prefix);
    expected.extend_from_slice(&hashed);
    em == expected
}

/// RSASSA-PSS with the hash `D`, MGF1 with `D` and a salt as long as the
/// hash (JWA's PS256/384/512).
pub(crate) fn verify_pss<D: Digest + FixedOutputReset>(
    key: &rsa::PublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let hashed = D::digest(message);
    let salt = <D as Digest>::output_size();
    key.verify(rsa::Pss::<D>::new_with_salt(salt), &hashed, signature)
        .is_ok()
}

/// `signature^e mod n` as `k` big-endian bytes, or `None` when the
/// signature is not an integer below `n` (RFC 8017 §5.2.2 step 1).
fn public_operation(key: &rsa::PublicKey, signature: &[u8], k: usize) -> Option<Vec<u8>> {
    let n = key.n();
    let s = BoxedUint::from_be_slice(signature, n.bits_precision()).ok()?;
    if s.cmp_vartime(n.as_ref()) != core::cmp::Ordering::Less {
        return None;
    }
    let e = key.e();
    let base = BoxedMontyForm::new(s, key.n_params());
    let mut power = base.clone();
    for bit in (0..e.bit_width_vartime().saturating_sub(1)).rev() {
        power = power.square();
        if e.bit_vartime(bit) {
            power = power.mul(&base);
        }
    }
    let bytes = power.retrieve().to_be_bytes();
    // The value is below n, so any bytes before the last k are zero.
    let skip = bytes.len().checked_sub(k)?;
    bytes.get(skip..).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any odd 2048-bit number passes the key checks (they do not test
    /// primality); what matters here is what the checks refuse.
    const N: [u8; 256] = [0xC5; 256];

    #[test]
    fn exponents_the_key_checks_refuse_are_refused_without_panicking() {
        assert!(public_key(&N, &[0x01, 0x00, 0x01]).is_some());
        // e = 0 (a JWK of zero bytes trims to nothing), e = 1, e = 2^64.
        assert!(public_key(&N, &[]).is_none());
        assert!(public_key(&N, &[0x01]).is_none());
        assert!(public_key(&N, &[0x01, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        // An even modulus has no Montgomery form.
        let mut even = N;
        even[255] = 0xC4;
        assert!(public_key(&even, &[0x01, 0x00, 0x01]).is_none());
    }

    #[test]
    fn a_signature_not_below_the_modulus_is_refused() {
        let key = public_key(&N, &[0x01, 0x00, 0x01]).unwrap();
        // s = n and s > n: RFC 8017 §5.2.2 step 1.
        assert!(public_operation(&key, &N, 256).is_none());
        assert!(public_operation(&key, &[0xFF; 256], 256).is_none());
        assert!(!verify_pkcs1v15::<sha2::Sha256>(&key, b"m", &[0xFF; 256]));
        // s = 1: 1^e = 1, which is no PKCS#1 v1.5 encoding.
        let mut one = [0u8; 256];
        one[255] = 1;
        assert_eq!(public_operation(&key, &one, 256).unwrap(), one.to_vec());
        assert!(!verify_pkcs1v15::<sha2::Sha256>(&key, b"m", &one));
    }
}

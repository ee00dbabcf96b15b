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

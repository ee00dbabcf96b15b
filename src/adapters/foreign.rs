//! Envoy's `verify_signature` foreign function: its protobuf messages
//! (`source/extensions/common/wasm/ext/verify_signature.proto`) and the
//! mapping from JOSE algorithms. The filter encodes the arguments and decodes
//! the result; the host's gateway does the reverse.

use prost::Message;

use crate::Algorithm;

/// The foreign function's name.
pub const VERIFY_SIGNATURE: &str = "verify_signature";

/// Algorithms Envoy's `verify_signature` checks as JOSE defines them:
/// RSASSA-PKCS1-v1_5 with SHA-2, and ECDSA P-256 with SHA-256 once the
/// JOSE signature (r‖s, RFC 7518 §3.4) is re-encoded as the DER Envoy's
/// verifier takes ([`ecdsa_der`]). Envoy's verifier uses the key's default
/// padding, so PSS stays in wasm, and so does EdDSA (no digest to name).
pub const HOST_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
];

/// The DER `SubjectPublicKeyInfo` prefix of every P-256 public key
/// (RFC 5480: id-ecPublicKey, prime256v1), before its uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The SubjectPublicKeyInfo DER of a public JWK, the key form
/// `verify_signature` takes: RSA, or EC on P-256 (the point is checked to
/// be on the curve first). `None` for other keys or malformed members.
pub fn spki_der(jwk: &serde_json::Value) -> Option<Vec<u8>> {
    match jwk.get("kty")?.as_str()? {
        "RSA" => rsa_spki_der(jwk),
        "EC" if jwk.get("crv")?.as_str()? == "P-256" => {
            let member = |name: &str| crate::decode_b64url(jwk.get(name)?.as_str()?);
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).ok()?;
            let mut der = P256_SPKI_PREFIX.to_vec();
            der.extend_from_slice(&point);
            Some(der)
        }
        _ => None,
    }
}

/// A JOSE ECDSA P-256 signature (r‖s, 64 bytes) as the DER
/// `ECDSA-Sig-Value` (RFC 3279) Envoy's verifier takes: each integer
/// minimal, with a zero byte where its high bit is set. `None` unless the
/// signature is exactly 64 bytes (RFC 7518 §3.4: anything else is
/// invalid). Zero or out-of-range values are encoded as they are, and the
/// verifier refuses them.
pub fn ecdsa_der(signature: &[u8]) -> Option<Vec<u8>> {
    if signature.len() != 64 {
        return None;
    }
    let (r, s) = signature.split_at(32);
    let integer = |v: &[u8]| {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len() - 1);
        let digits = v.get(start..).unwrap_or_default();
        let pad = digits.first().is_some_and(|&b| b & 0x80 != 0);
        let mut out = vec![
            0x02,
            u8::try_from(digits.len() + usize::from(pad)).unwrap_or(0),
        ];
        if pad {
            out.push(0);
        }
        out.extend_from_slice(digits);
        out
    };
    let (r, s) = (integer(r), integer(s));
    let mut der = vec![0x30, u8::try_from(r.len() + s.len()).ok()?];
    der.extend_from_slice(&r);
    der.extend_from_slice(&s);
    Some(der)
}

/// `VerifySignatureArguments`.
#[derive(Clone, PartialEq, Message)]
pub struct VerifySignatureArguments {
    /// `sha256`, `sha384` or `sha512`.
    #[prost(string, tag = "1")]
    pub hash_function: String,
    /// SubjectPublicKeyInfo DER.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// The signature to check: the JWS signature segment, base64url-decoded.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    /// The signed text.
    #[prost(bytes = "vec", tag = "4")]
    pub text: Vec<u8>,
    /// The key as PEM (instead of `public_key`).
    #[prost(string, tag = "5")]
    pub public_key_pem: String,
}

/// `VerifySignatureResult`.
#[derive(Clone, PartialEq, Message)]
pub struct VerifySignatureResult {
    /// Whether the signature is valid.
    #[prost(bool, tag = "1")]
    pub result: bool,
    /// Why not, when it is not.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// The SubjectPublicKeyInfo DER of an RSA public JWK: the key form
/// `verify_signature` takes. `None` for other keys or malformed members.
pub fn rsa_spki_der(jwk: &serde_json::Value) -> Option<Vec<u8>> {
    let member = |name: &str| crate::decode_b64url(jwk.get(name)?.as_str()?);
    let (n, e) = (member("n")?, member("e")?);
    let key = crate::keys::portable_rsa::public_key(
        crate::keys::trim_zeros(&n),
        crate::keys::trim_zeros(&e),
    )?;
    rsa::pkcs8::EncodePublicKey::to_public_key_der(&key)
        .ok()
        .map(|der| der.as_bytes().to_vec())
}

/// The hash name Envoy expects for an algorithm it verifies.
pub fn hash_function(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::RS256 => Some("sha256"),
        Algorithm::RS384 => Some("sha384"),
        Algorithm::RS512 => Some("sha512"),
        Algorithm::ES256 => Some("sha256"),
        _ => None,
    }
}

/// The encoded arguments for one check; `None` for an algorithm or key the
/// host does not verify, or an ECDSA signature that is not 64 bytes.
pub fn encode_request(
    alg: Algorithm,
    public_key_der: &[u8],
    signature: &[u8],
    text: &[u8],
) -> Option<Vec<u8>> {
    let signature = match alg {
        Algorithm::ES256 => ecdsa_der(signature)?,
        _ => signature.to_vec(),
    };
    let args = VerifySignatureArguments {
        hash_function: hash_function(alg)?.to_owned(),
        public_key: public_key_der.to_vec(),
        signature,
        text: text.to_vec(),
        public_key_pem: String::new(),
    };
    Some(args.encode_to_vec())
}

/// The verdict in an encoded result; `None` when it does not decode.
pub fn decode_result(bytes: &[u8]) -> Option<bool> {
    VerifySignatureResult::decode(bytes).ok().map(|r| r.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode_request(Algorithm::RS384, b"der", b"sig", b"text").unwrap();
        let args = VerifySignatureArguments::decode(bytes.as_slice()).unwrap();
        assert_eq!(args.hash_function, "sha384");
        assert_eq!(
            (args.public_key.as_slice(), args.text.as_slice()),
            (&b"der"[..], &b"text"[..])
        );
        assert!(encode_request(Algorithm::PS256, b"der", b"sig", b"text").is_none());
        assert!(
            encode_request(Algorithm::ES256, b"der", b"sig", b"text").is_none(),
            "not r||s"
        );
        let ok = VerifySignatureResult {
            result: true,
            error: String::new(),
        }
        .encode_to_vec();
        assert_eq!(decode_result(&ok), Some(true));
        assert_eq!(
            decode_result(&[]),
            Some(false),
            "proto3: absent means false"
        );
        assert_eq!(decode_result(&[0xff]), None);
    }

    #[test]
    fn ecdsa_signatures_become_minimal_der() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r: high bit set, so a zero byte leads
        raw[63] = 0x01; // s: 1, its leading zeros dropped
        assert_eq!(
            ecdsa_der(&raw).unwrap(),
            [
                &[0x30, 0x26, 0x02, 0x21, 0x00][..],
                &raw[..32],
                &[0x02, 0x01, 0x01][..]
            ]
            .concat()
        );
        let zero = ecdsa_der(&[0u8; 64]).unwrap();
        assert_eq!(zero, [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
        assert_eq!(ecdsa_der(&[1u8; 63]), None);
        assert_eq!(ecdsa_der(&[1u8; 65]), None);
    }
}

//! Envoy's `verify_signature` foreign function: its protobuf messages
//! (`source/extensions/common/wasm/ext/verify_signature.proto`) and the
//! mapping from JOSE algorithms. The filter encodes the arguments and decodes
//! the result; the host's gateway does the reverse.

use prost::Message;

use crate::Algorithm;

/// The foreign function's name.
pub const VERIFY_SIGNATURE: &str = "verify_signature";

/// Algorithms Envoy's `verify_signature` checks exactly as JOSE defines them:
/// RSASSA-PKCS1-v1_5 with SHA-2 (Envoy's verifier uses the key's default
/// padding, so PSS and raw-encoded ECDSA stay in wasm).
pub const HOST_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];

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
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .ok()?;
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
        _ => None,
    }
}

/// The encoded arguments for one check; `None` for an algorithm or key the
/// host does not verify.
pub fn encode_request(
    alg: Algorithm,
    public_key_der: &[u8],
    signature: &[u8],
    text: &[u8],
) -> Option<Vec<u8>> {
    let args = VerifySignatureArguments {
        hash_function: hash_function(alg)?.to_owned(),
        public_key: public_key_der.to_vec(),
        signature: signature.to_vec(),
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
        assert!(encode_request(Algorithm::ES256, b"der", b"sig", b"text").is_none());
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
}

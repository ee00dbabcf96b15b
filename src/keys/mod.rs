//! Verification keys: JWKS parsing into a per-issuer [`KeySet`], `kid` lookup, and
//! the signature primitives. The algorithm always comes from the key, never from
//! the token.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json::{self, JsonLimits};

pub(crate) mod portable_rsa;

/// A JWS algorithm erpgate can verify. `none` is not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 and MGF1 SHA-256, salt = hash length.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256, signature as raw `r || s` (64 bytes).
    ES256,
    /// Ed25519.
    EdDSA,
    /// HMAC SHA-256; only with an explicit shared secret in the policy.
    HS256,
    /// HMAC SHA-384; only with an explicit shared secret in the policy.
    HS384,
    /// HMAC SHA-512; only with an explicit shared secret in the policy.
    HS512,
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Algorithm; 11] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ];

    /// The JWA name (RFC 7518).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    /// Looks up a JWA name, case-sensitively as RFC 7515 requires.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether this is a shared-secret algorithm.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON object within the size and depth bounds, or duplicate members.
    #[error("JWKS is not a bounded JSON object: {0}")]
    Json(#[from] json::JsonError),
    /// The `keys` member is missing or not an array.
    #[error("JWKS has no `keys` array")]
    NoKeysArray,
    /// More keys than a JWKS may hold.
    #[error("JWKS holds more than {0} keys")]
    TooManyKeys(usize),
}

/// Why one key of a JWKS was skipped. The rest of the set is still used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The key is marked for encryption (`use: enc`) or lacks `verify` in `key_ops`.
    #[error("key is not for signature verification")]
    NotForSignatures,
    /// `kty` is not RSA, EC or OKP.
    #[error("unsupported key type")]
    UnsupportedKeyType,
    /// EC curve other than P-256, or OKP curve other than Ed25519.
    #[error("unsupported curve")]
    UnsupportedCurve,
    /// A required member is missing, mistyped, or not strict base64url.
    #[error("missing or malformed member `{0}`")]
    Malformed(&'static str),
    /// RSA modulus under 2048 bits.
    #[error("RSA modulus is shorter than 2048 bits")]
    RsaTooSmall,
    /// RSA modulus over 4096 bits, or an exponent out of range.
    #[error("RSA key parameters out of range")]
    RsaOutOfRange,
    /// The point is not on the curve, or the key bytes are invalid.
    #[error("invalid public key")]
    InvalidKey,
    /// The key's `alg` is not allowed for this issuer or does not fit the key type.
    #[error("algorithm not allowed for this key")]
    AlgorithmNotAllowed,
    /// No `alg` and several allowed algorithms fit the key type.
    #[error("no `alg` and the key type fits several allowed algorithms")]
    AmbiguousAlgorithm,
    /// Another key earlier in the set has the same `kid`.
    #[error("duplicate kid")]
    DuplicateKid,
    /// The key carries private members.
    #[error("private key material in a JWKS")]
    PrivateMaterial,
}

/// A key that was skipped, with the reason (logged by adapters; no secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// The key's `kid`, when it had a usable one.
    pub kid: Option<String>,
    /// Why the key was not used.
    pub reason: SkipReason,
}

#[derive(Clone)]
enum Material {
    Rsa {
        portable: Box<rsa::PublicKey>,
        #[cfg(not(target_arch = "wasm32"))]
        native: boring::pkey::PKey<boring::pkey::Public>,
        modulus_len: usize,
    },
    Ec(p256::ecdsa::VerifyingKey),
    Ed(ed25519_dalek::VerifyingKey),
    Hmac(Vec<u8>),
}

/// One verification key bound to exactly one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    alg: Algorithm,
    material: Material,
    public_jwk: Option<Arc<PublicJwk>>,
}

/// A public key as a JWK, for host crypto (WebCrypto, Envoy's
/// `verify_signature`), with a fingerprint that names it: an adapter keeps
/// what it made of the key (an imported `CryptoKey`, a DER form) under it.
#[derive(Debug, PartialEq, Eq)]
pub struct PublicJwk {
    /// The public members, `alg` and `kid`.
    pub jwk: Value,
    /// SHA-256 of the JWK's text, in hex: equal only for equal keys.
    pub fingerprint: String,
}

impl PublicJwk {
    fn new(jwk: Value) -> Arc<Self> {
        let fingerprint = crate::cache::TokenHash::of(&jwk.to_string()).to_hex();
        Arc::new(PublicJwk { jwk, fingerprint })
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Which implementation verifies a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Pure Rust (RustCrypto); the only backend inside wasm.
    Portable,
    /// BoringSSL for RSA, natively; other algorithms use the portable code.
    #[cfg(not(target_arch = "wasm32"))]
    Native,
}

impl Backend {
    /// The fastest backend on this target.
    pub fn preferred() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        {
            Backend::Native
        }
        #[cfg(target_arch = "wasm32")]
        {
            Backend::Portable
        }
    }
}

fn rsa_verify_portable(
    key: &rsa::PublicKey,
    alg: Algorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use sha2::{Sha256, Sha384, Sha512};
    match alg {
        Algorithm::RS256 => portable_rsa::verify_pkcs1v15::<Sha256>(key, message, signature),
        Algorithm::RS384 => portable_rsa::verify_pkcs1v15::<Sha384>(key, message, signature),
        Algorithm::RS512 => portable_rsa::verify_pkcs1v15::<Sha512>(key, message, signature),
        Algorithm::PS256 => portable_rsa::verify_pss::<Sha256>(key, message, signature),
        Algorithm::PS384 => portable_rsa::verify_pss::<Sha384>(key, message, signature),
        Algorithm::PS512 => portable_rsa::verify_pss::<Sha512>(key, message, signature),
        _ => false,
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn rsa_verify_native(
    key: &boring::pkey::PKey<boring::pkey::Public>,
    alg: Algorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use boring::hash::MessageDigest;
    use boring::rsa::Padding;
    use boring::sign::{RsaPssSaltlen, Verifier};
    let (digest, pss) = match alg {
        Algorithm::RS256 => (MessageDigest::sha256(), false),
        Algorithm::RS384 => (MessageDigest::sha384(), false),
        Algorithm::RS512 => (MessageDigest::sha512(), false),
        Algorithm::PS256 => (MessageDigest::sha256(), true),
        Algorithm::PS384 => (MessageDigest::sha384(), true),
        Algorithm::PS512 => (MessageDigest::sha512(), true),
        _ => return false,
    };
    let run = || -> Result<bool, boring::error::ErrorStack> {
        let mut verifier = Verifier::new(digest, key)?;
        if pss {
            verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
            verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            verifier.set_rsa_mgf1_md(digest)?;
        } else {
            verifier.set_rsa_padding(Padding::PKCS1)?;
        }
        verifier.update(message)?;
        verifier.verify(signature)
    };
    run().unwrap_or(false)
}

impl VerifyingKey {
    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (for host crypto such as WebCrypto). `None` for shared secrets,
    /// which never leave the core.
    pub fn public_jwk(&self) -> Option<&Value> {
        self.public_jwk.as_deref().map(|p| &p.jwk)
    }

    /// The public JWK with its fingerprint, shared (host crypto requests
    /// carry it without a copy).
    pub fn host_key(&self) -> Option<&Arc<PublicJwk>> {
        self.public_jwk.as_ref()
    }

    /// A public key from one JWK, bound to one of `allowed`: the checks a
    /// JWKS entry gets (public members only, sizes, curve points).
    pub fn from_jwk(jwk: &Map<String, Value>, allowed: &[Algorithm]) -> Result<Self, SkipReason> {
        parse_jwk(jwk, allowed)
    }

    /// Builds an HMAC key from an explicit shared secret.
    pub fn hmac(alg: Algorithm, secret: Vec<u8>, kid: Option<String>) -> Option<Self> {
        alg.is_hmac().then_some(Self {
            kid,
            alg,
            material: Material::Hmac(secret),
            public_jwk: None,
        })
    }

    /// Verifies `signature` over `message` with the preferred backend.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verify_with(Backend::preferred(), message, signature)
    }

    /// Verifies with a chosen backend. Every backend must agree; tests check that.
    pub fn verify_with(&self, backend: Backend, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Rsa {
                portable,
                modulus_len,
                #[cfg(not(target_arch = "wasm32"))]
                native,
                ..
            } => {
                // RFC 8017 §8.2.2 step 1: the signature is exactly k bytes.
                if signature.len() != *modulus_len {
                    return false;
                }
                match backend {
                    Backend::Portable => {
                        rsa_verify_portable(portable, self.alg, message, signature)
                    }
                    #[cfg(not(target_arch = "wasm32"))]
                    Backend::Native => rsa_verify_native(native, self.alg, message, signature),
                }
            }
            Material::Ec(vk) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                use sha2::Digest;
                // JWS ES256 is raw r||s, exactly 64 bytes; r and s must be in [1, n-1]
                // (from_slice refuses zero, which is CVE-2022-21449).
                if signature.len() != 64 {
                    return false;
                }
                // Hashed here with the `sha2` the rest of the core uses
                // (`p256` would link a second one).
                let digest = sha2::Sha256::digest(message);
                match p256::ecdsa::Signature::from_slice(signature) {
                    Ok(sig) => vk.verify_prehash(&digest, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            Material::Ed(vk) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                vk.verify_strict(message, &sig).is_ok()
            }
            Material::Hmac(secret) => hmac_verify(self.alg, secret, message, signature),
        }
    }
}

fn hmac_verify(alg: Algorithm, secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    macro_rules! check {
        ($hash:ty) => {{
            match Hmac::<$hash>::new_from_slice(secret) {
                Ok(mut mac) => {
                    mac.update(message);
                    // constant-time comparison
                    mac.verify_slice(signature).is_ok()
                }
                Err(_) => false,
            }
        }};
    }
    match alg {
        Algorithm::HS256 => check!(sha2::Sha256),
        Algorithm::HS384 => check!(sha2::Sha384),
        Algorithm::HS512 => check!(sha2::Sha512),
        _ => false,
    }
}

/// The verification keys of one issuer.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    skipped: Vec<SkippedKey>,
}

/// Most keys a JWKS may hold.
pub const MAX_JWKS_KEYS: usize = 32;
/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
const MAX_KID_BYTES: usize = 256;

fn member_str<'a>(
    jwk: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, SkipReason> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SkipReason::Malformed(name)),
    }
}

fn member_b64(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, SkipReason> {
    member_str(jwk, name)?
        .and_then(json::decode_b64url)
        .ok_or(SkipReason::Malformed(name))
}

/// Whether a `kid` is acceptable: bounded and free of control characters.
pub fn kid_is_sane(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_BYTES && !kid.chars().any(char::is_control)
}

fn pick_alg(
    declared: Option<&str>,
    fits: &[Algorithm],
    allowed: &[Algorithm],
) -> Result<Algorithm, SkipReason> {
    match declared {
        Some(name) => {
            let alg = Algorithm::from_name(name).ok_or(SkipReason::AlgorithmNotAllowed)?;
            if fits.contains(&alg) && allowed.contains(&alg) {
                Ok(alg)
            } else {
                Err(SkipReason::AlgorithmNotAllowed)
            }
        }
        None => {
            let mut candidates = fits.iter().copied().filter(|a| allowed.contains(a));
            match (candidates.next(), candidates.next()) {
                (Some(alg), None) => Ok(alg),
                (None, _) => Err(SkipReason::AlgorithmNotAllowed),
                (Some(_), Some(_)) => Err(SkipReason::AmbiguousAlgorithm),
            }
        }
    }
}

/// The RSA algorithms: the first six of [`Algorithm::ALL`].
const RSA_ALGS: &[Algorithm] = Algorithm::ALL.split_at(6).0;

fn parse_jwk(jwk: &Map<String, Value>, allowed: &[Algorithm]) -> Result<VerifyingKey, SkipReason> {
    if let Some(usage) = member_str(jwk, "use")?
        && usage != "sig"
    {
        return Err(SkipReason::NotForSignatures);
    }
    if let Some(ops) = jwk.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err(SkipReason::Malformed("key_ops"));
        };
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(SkipReason::NotForSignatures);
        }
    }
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| jwk.contains_key(*m))
    {
        return Err(SkipReason::PrivateMaterial);
    }
    let kid = match member_str(jwk, "kid")? {
        Some(kid) if kid_is_sane(kid) => Some(kid.to_owned()),
        Some(_) => return Err(SkipReason::Malformed("kid")),
        None => None,
    };
    let declared = member_str(jwk, "alg")?;
    let kty = member_str(jwk, "kty")?.ok_or(SkipReason::Malformed("kty"))?;
    let mut public = Map::new();
    public.insert("kty".into(), Value::String(kty.to_owned()));
    let (alg, material) = match kty {
        "RSA" => {
            let n = member_b64(jwk, "n")?;
            let e = member_b64(jwk, "e")?;
            let n_trimmed = trim_zeros(&n);
            let bits = bit_length(n_trimmed);
            if bits < 2048 {
                return Err(SkipReason::RsaTooSmall);
            }
            if bits > 4096 {
                return Err(SkipReason::RsaOutOfRange);
            }
            let alg = pick_alg(declared, RSA_ALGS, allowed)?;
            let portable = portable_rsa::public_key(n_trimmed, trim_zeros(&e))
                .ok_or(SkipReason::RsaOutOfRange)?;
            #[cfg(not(target_arch = "wasm32"))]
            let native = native_rsa(n_trimmed, &e).ok_or(SkipReason::InvalidKey)?;
            public.insert("n".into(), Value::String(json::encode_b64url(n_trimmed)));
            public.insert(
                "e".into(),
                Value::String(json::encode_b64url(trim_zeros(&e))),
            );
            (
                alg,
                Material::Rsa {
                    portable: Box::new(portable),
                    #[cfg(not(target_arch = "wasm32"))]
                    native,
                    modulus_len: n_trimmed.len(),
                },
            )
        }
        "EC" => {
            if member_str(jwk, "crv")? != Some("P-256") {
                return Err(SkipReason::UnsupportedCurve);
            }
            let x = member_b64(jwk, "x")?;
            let y = member_b64(jwk, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(SkipReason::InvalidKey);
            }
            let alg = pick_alg(declared, &[Algorithm::ES256], allowed)?;
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .map_err(|_| SkipReason::InvalidKey)?;
            public.insert("crv".into(), Value::String("P-256".into()));
            public.insert("x".into(), Value::String(json::encode_b64url(&x)));
            public.insert("y".into(), Value::String(json::encode_b64url(&y)));
            (alg, Material::Ec(vk))
        }
        "OKP" => {
            if member_str(jwk, "crv")? != Some("Ed25519") {
                return Err(SkipReason::UnsupportedCurve);
            }
            let x = member_b64(jwk, "x")?;
            let bytes = <[u8; 32]>::try_from(x.as_slice()).map_err(|_| SkipReason::InvalidKey)?;
            let alg = pick_alg(declared, &[Algorithm::EdDSA], allowed)?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| SkipReason::InvalidKey)?;
            public.insert("crv".into(), Value::String("Ed25519".into()));
            public.insert("x".into(), Value::String(json::encode_b64url(&bytes)));
            (alg, Material::Ed(vk))
        }
        _ => return Err(SkipReason::UnsupportedKeyType),
    };
    public.insert("alg".into(), Value::String(alg.name().into()));
    if let Some(kid) = &kid {
        public.insert("kid".into(), Value::String(kid.clone()));
    }
    Ok(VerifyingKey {
        kid,
        alg,
        material,
        public_jwk: Some(PublicJwk::new(Value::Object(public))),
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn native_rsa(n: &[u8], e: &[u8]) -> Option<boring::pkey::PKey<boring::pkey::Public>> {
    let n = boring::bn::BigNum::from_slice(n).ok()?;
    let e = boring::bn::BigNum::from_slice(e).ok()?;
    let rsa = boring::rsa::Rsa::from_public_components(n, e).ok()?;
    boring::pkey::PKey::from_rsa(rsa).ok()
}

pub(crate) fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(&top) => (bytes.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot be used are skipped with a reason;
    /// the document as a whole fails only when it is not a bounded JWKS.
    pub fn from_jwks(bytes: &[u8], allowed: &[Algorithm]) -> Result<Self, JwksError> {
        let doc = json::parse_object(
            bytes,
            JsonLimits {
                max_bytes: MAX_JWKS_BYTES,
                max_depth: 4,
            },
        )?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::NoKeysArray);
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys(MAX_JWKS_KEYS));
        }
        let mut set = KeySet::default();
        for entry in entries {
            let Value::Object(jwk) = entry else {
                set.skipped.push(SkippedKey {
                    kid: None,
                    reason: SkipReason::Malformed("keys[]"),
                });
                continue;
            };
            match parse_jwk(jwk, allowed) {
                Ok(key) => set.push(key),
                Err(reason) => set.skipped.push(SkippedKey {
                    kid: jwk
                        .get("kid")
                        .and_then(Value::as_str)
                        .filter(|k| kid_is_sane(k))
                        .map(str::to_owned),
                    reason,
                }),
            }
        }
        Ok(set)
    }

    /// Adds a key; a second key with the same `kid` is skipped.
    pub fn push(&mut self, key: VerifyingKey) {
        if key.kid.is_some() && self.keys.iter().any(|k| k.kid == key.kid) {
            self.skipped.push(SkippedKey {
                kid: key.kid,
                reason: SkipReason::DuplicateKid,
            });
        } else {
            self.keys.push(Arc::new(key));
        }
    }

    /// Selects the key for a token. With a `kid`, the exact match; without one,
    /// the only key, and nothing when the set holds several.
    pub fn select(&self, kid: Option<&str>) -> Option<&Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }

    /// The keys that imported, each bound to one algorithm.
    pub fn keys(&self) -> &[Arc<VerifyingKey>] {
        &self.keys
    }

    /// Keys that were skipped, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Merges `other` into a copy of `self` (inline keys plus fetched keys).
    pub fn merged(&self, other: &KeySet) -> KeySet {
        let mut out = self.clone();
        for key in &other.keys {
            if !(key.kid.is_some() && out.keys.iter().any(|k| k.kid == key.kid)) {
                out.keys.push(Arc::clone(key));
            }
        }
        out
    }
}

//! DPoP proofs (RFC 9449 §4.3) and JWK thumbprints (RFC 7638).
//!
//! A proof is checked in two halves so that its signature can go to host
//! crypto: [`decode`] does every check that needs no key operation (shape,
//! `typ`, `alg`, the embedded public `jwk`, `htm`, `htu`, `iat`, `ath`,
//! `nonce`) and returns an [`UnverifiedProof`]; its signature is then checked
//! in-process ([`UnverifiedProof::verify`]) or by the host with the key's
//! public JWK. Whether the `jti` was seen before is the caller's replay
//! cache's business: the proof hands it over, hashed with its key.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::json::{self, JsonLimits};
use crate::keys::{Algorithm, VerifyingKey};
use crate::time::Time;

/// The largest proof accepted, in bytes: an RSA-4096 `jwk` fits easily.
pub const MAX_PROOF_BYTES: usize = 8192;

/// Why a proof was refused. Each is `invalid_dpop_proof` on the wire except
/// [`DpopError::NonceRequired`], which is `use_dpop_nonce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// No `DPoP` header, more than one, or an empty one.
    #[error("exactly one DPoP proof is required")]
    ProofCount,
    /// Not a compact JWS of bounded size with JSON header and claims.
    #[error("the DPoP proof is malformed")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof is not of type dpop+jwt")]
    WrongType,
    /// `alg` is `none`, symmetric, unknown or not allowed.
    #[error("the DPoP proof's algorithm is not accepted")]
    Algorithm,
    /// `jwk` is missing, not a usable public key for `alg`, or private.
    #[error("the DPoP proof's jwk is not an acceptable public key")]
    Key,
    /// The signature does not verify with the embedded key.
    #[error("the DPoP proof's signature is invalid")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("the DPoP proof lacks a required claim")]
    MissingClaim,
    /// `htm` is not the request's method.
    #[error("the DPoP proof is for another method")]
    Method,
    /// `htu` is not the request's URI.
    #[error("the DPoP proof is for another URI")]
    Uri,
    /// `iat` is outside the accepted window.
    #[error("the DPoP proof is not fresh")]
    Time,
    /// `ath` is not the hash of the access token presented with it.
    #[error("the DPoP proof is for another access token")]
    TokenHash,
    /// The server asked for a nonce and the proof has none, or another.
    #[error("a DPoP nonce is required")]
    NonceRequired,
    /// The proof's `jti` was seen before within the window.
    #[error("the DPoP proof was used before")]
    Replayed,
    /// The proof's key is not the one the token is bound to.
    #[error("the DPoP proof is signed by another key than the token's")]
    WrongKey,
}

impl DpopError {
    /// The RFC 9449 error code.
    pub fn error_code(self) -> &'static str {
        match self {
            DpopError::NonceRequired => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }

    /// A stable snake_case code for logs and vectors.
    pub fn code(self) -> &'static str {
        match self {
            DpopError::ProofCount => "dpop_proof_count",
            DpopError::Malformed => "dpop_malformed",
            DpopError::WrongType => "dpop_wrong_type",
            DpopError::Algorithm => "dpop_algorithm",
            DpopError::Key => "dpop_key",
            DpopError::Signature => "dpop_signature",
            DpopError::MissingClaim => "dpop_missing_claim",
            DpopError::Method => "dpop_method",
            DpopError::Uri => "dpop_uri",
            DpopError::Time => "dpop_time",
            DpopError::TokenHash => "dpop_token_hash",
            DpopError::NonceRequired => "use_dpop_nonce",
            DpopError::Replayed => "dpop_replayed",
            DpopError::WrongKey => "dpop_wrong_key",
        }
    }
}

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofCheck<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's URI as the client addressed it (`scheme://authority/path`,
    /// a query is ignored); compared after RFC 3986 §6.2.2–6.2.3
    /// normalisation.
    pub uri: &'a str,
    /// Now.
    pub now: Time,
    /// How old `iat` may be, in seconds.
    pub max_age_s: u64,
    /// How far in the future `iat` may be, in seconds (clock skew).
    pub leeway_s: u64,
    /// The algorithms a proof may use (asymmetric ones only count).
    pub algorithms: &'a [Algorithm],
    /// SHA-256 of the access token presented with the proof: `ath` must be
    /// its base64url (the edge has it already: its caches are keyed by it).
    /// `None` at a token endpoint, where there is no token yet.
    pub access_token_sha256: Option<[u8; 32]>,
    /// The nonces the server accepts now; empty when it requires none.
    pub nonces: &'a [&'a str],
}

/// A proof whose every claim checked out, before its signature is checked.
#[derive(Debug)]
pub struct UnverifiedProof<'p> {
    /// The embedded public key.
    pub key: VerifyingKey,
    /// RFC 7638 thumbprint of the key, base64url: what `cnf.jkt` binds.
    pub jkt: String,
    /// SHA-256 of the key's thumbprint and the `jti`: what a replay cache
    /// keeps (a `jti` is unique per key, RFC 9449 §4.2).
    pub replay_id: [u8; 32],
    /// `iat`, Unix seconds: the replay cache keeps the `jti` until it is
    /// too old to be accepted anyway.
    pub iat: u64,
    /// `base64url(header) '.' base64url(claims)`.
    pub signing_input: &'p str,
    /// The raw signature.
    pub signature: Vec<u8>,
}

impl UnverifiedProof<'_> {
    /// Checks the signature in-process.
    pub fn verify(&self) -> Result<(), DpopError> {
        if self
            .key
            .verify(self.signing_input.as_bytes(), &self.signature)
        {
            Ok(())
        } else {
            Err(DpopError::Signature)
        }
    }
}

/// The one `DPoP` header value among `headers`, or [`DpopError::ProofCount`].
pub fn proof_header<'a>(headers: &[(&str, &'a [u8])]) -> Result<&'a str, DpopError> {
    let mut found = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("dpop") {
            if found.is_some() {
                return Err(DpopError::ProofCount);
            }
            found = Some(*value);
        }
    }
    let value = found.ok_or(DpopError::ProofCount)?;
    let text = std::str::from_utf8(value).map_err(|_| DpopError::Malformed)?;
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() {
        return Err(DpopError::ProofCount);
    }
    Ok(text)
}

/// `base64url(SHA-256(text))`: `ath` of an access token (RFC 9449 §4.2).
pub fn token_hash(access_token: &str) -> String {
    json::encode_b64url(&Sha256::digest(access_token.as_bytes()))
}

/// The RFC 7638 thumbprint of a public JWK, base64url; `None` for a key
/// type without one here.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let text = |names: &[&str]| -> Option<String> {
        let mut canonical = Map::new();
        for name in names {
            canonical.insert((*name).to_owned(), Value::String(member(name)?.to_owned()));
        }
        // serde_json's map keeps keys sorted and writes no whitespace: the
        // form RFC 7638 §3.3 hashes.
        Some(Value::Object(canonical).to_string())
    };
    let canonical = match member("kty")? {
        "RSA" => text(&["e", "kty", "n"])?,
        "EC" => text(&["crv", "kty", "x", "y"])?,
        "OKP" => text(&["crv", "kty", "x"])?,
        _ => return None,
    };
    Some(json::encode_b64url(&Sha256::digest(canonical.as_bytes())))
}

/// `scheme://authority/path` of a URI normalised for comparison (RFC 3986
/// §6.2.2 and §6.2.3): scheme and host lowercased, the default port
/// dropped, an empty path made `/`, percent-encoded unreserved characters
/// decoded and other escapes' hex uppercased, dot-segments removed; query
/// and fragment dropped. `None` when it is not an absolute http(s) URI.
pub fn normalize_uri(uri: &str) -> Option<String> {
    let uri = uri.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return None;
    }
    let mut authority = authority.to_ascii_lowercase();
    if authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    let mut out = format!("{scheme}://{authority}");
    let mut segments: Vec<String> = Vec::new();
    let path = if path.is_empty() { "/" } else { path };
    for segment in path.split('/').skip(1) {
        match normalize_escapes(segment)?.as_str() {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other.to_owned()),
        }
    }
    // A trailing dot-segment leaves the path ending in `/`.
    if path.ends_with("/.") || path.ends_with("/..") {
        segments.push(String::new());
    }
    if segments.is_empty() {
        segments.push(String::new());
    }
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    Some(out)
}

fn normalize_escapes(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            let value = u8::from_str_radix(text, 16).ok()?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push_str(&text.to_ascii_uppercase());
            }
            i += 3;
        } else if b.is_ascii_graphic() {
            out.push(char::from(b));
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn string<'m>(claims: &'m Map<String, Value>, name: &str) -> Result<&'m str, DpopError> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(DpopError::MissingClaim),
    }
}

/// What a proof's protected header yields: its algorithm, the embedded
/// public key and the key's thumbprint.
#[derive(Debug, Clone)]
struct HeaderKey {
    alg: Algorithm,
    key: VerifyingKey,
    jkt: String,
}

/// The protected headers of recent proofs and what each yielded. A client
/// signs every proof with the same key, so its next proof carries the same
/// header text: the key is then not parsed, checked and thumbprinted again.
/// Keyed by the exact header text; bounded in entries and in header size.
#[derive(Debug)]
pub struct ProofKeys(lru::LruCache<String, HeaderKey>);

impl ProofKeys {
    /// How many headers are remembered.
    const ENTRIES: usize = 256;
    /// The longest header remembered, in base64url characters (an RSA-4096
    /// key's header is about 900).
    const MAX_HEADER: usize = 1024;

    /// An empty memory.
    pub fn new() -> Self {
        Self(lru::LruCache::new(
            std::num::NonZeroUsize::new(Self::ENTRIES).unwrap_or(std::num::NonZeroUsize::MIN),
        ))
    }

    fn header_key(
        &mut self,
        header_b64: &str,
        algorithms: &[Algorithm],
    ) -> Result<HeaderKey, DpopError> {
        if let Some(known) = self.0.get(header_b64) {
            // The policy may have changed since (a reload).
            if !algorithms.contains(&known.alg) {
                return Err(DpopError::Algorithm);
            }
            return Ok(known.clone());
        }
        let fresh = header_key(header_b64, algorithms)?;
        if header_b64.len() <= Self::MAX_HEADER {
            self.0.put(header_b64.to_owned(), fresh.clone());
        }
        Ok(fresh)
    }
}

impl Default for ProofKeys {
    fn default() -> Self {
        Self::new()
    }
}

fn decode_object(b64: &str, max_depth: usize) -> Result<Map<String, Value>, DpopError> {
    let bytes = json::decode_b64url(b64).ok_or(DpopError::Malformed)?;
    let limits = JsonLimits {
        max_bytes: MAX_PROOF_BYTES,
        max_depth,
    };
    json::parse_object(&bytes, limits).map_err(|_| DpopError::Malformed)
}

/// The protected header's checks: `typ`, no extension or remote key, an
/// allowed asymmetric `alg`, and an embedded public `jwk` for it.
fn header_key(header_b64: &str, algorithms: &[Algorithm]) -> Result<HeaderKey, DpopError> {
    let header = decode_object(header_b64, 3)?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(DpopError::WrongType);
    }
    // No extension is implemented, and the key is the embedded one only.
    if ["crit", "b64", "jku", "x5u", "x5c", "enc", "zip"]
        .iter()
        .any(|m| header.contains_key(*m))
    {
        return Err(DpopError::Malformed);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .filter(|a| !a.is_hmac() && algorithms.contains(a))
        .ok_or(DpopError::Algorithm)?;
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(DpopError::Key);
    };
    let key = VerifyingKey::from_jwk(jwk, &[alg]).map_err(|_| DpopError::Key)?;
    let jkt = thumbprint(jwk).ok_or(DpopError::Key)?;
    Ok(HeaderKey { alg, key, jkt })
}

/// Checks everything about a proof but its signature.
pub fn decode<'p>(
    proof: &'p str,
    check: &ProofCheck<'_>,
) -> Result<UnverifiedProof<'p>, DpopError> {
    decode_with(proof, check, None)
}

/// [`decode`], with the headers of earlier proofs remembered in `keys`.
pub fn decode_remembering<'p>(
    proof: &'p str,
    check: &ProofCheck<'_>,
    keys: &mut ProofKeys,
) -> Result<UnverifiedProof<'p>, DpopError> {
    decode_with(proof, check, Some(keys))
}

fn decode_with<'p>(
    proof: &'p str,
    check: &ProofCheck<'_>,
    keys: Option<&mut ProofKeys>,
) -> Result<UnverifiedProof<'p>, DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed);
    };
    let signature = json::decode_b64url(signature_b64)
        .filter(|s| !s.is_empty())
        .ok_or(DpopError::Malformed)?;
    let HeaderKey { key, jkt, .. } = match keys {
        Some(keys) => keys.header_key(header_b64, check.algorithms)?,
        None => header_key(header_b64, check.algorithms)?,
    };
    let claims = decode_object(claims_b64, 4)?;
    let jti = string(&claims, "jti")?;
    if jti.len() > 256 {
        return Err(DpopError::Malformed);
    }
    if string(&claims, "htm")? != check.method {
        return Err(DpopError::Method);
    }
    let htu = normalize_uri(string(&claims, "htu")?).ok_or(DpopError::Uri)?;
    if Some(htu) != normalize_uri(check.uri) {
        return Err(DpopError::Uri);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(DpopError::MissingClaim)?;
    let now = check.now.secs();
    if iat > now.saturating_add(check.leeway_s) || iat.saturating_add(check.max_age_s) < now {
        return Err(DpopError::Time);
    }
    if let Some(digest) = check.access_token_sha256
        && string(&claims, "ath")? != json::encode_b64url(&digest)
    {
        return Err(DpopError::TokenHash);
    }
    if !check.nonces.is_empty()
        && !claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|n| check.nonces.contains(&n))
    {
        return Err(DpopError::NonceRequired);
    }
    let replay_id = Sha256::new()
        .chain_update(jkt.as_bytes())
        .chain_update(b".")
        .chain_update(jti.as_bytes())
        .finalize()
        .into();
    let signing_input = proof
        .rsplit_once('.')
        .map(|(input, _)| input)
        .ok_or(DpopError::Malformed)?;
    Ok(UnverifiedProof {
        key,
        jkt,
        replay_id,
        iat,
        signing_input,
        signature,
    })
}

/// The key server nonces (RFC 9449 §8–9) are minted under. A nonce is the
/// HMAC-SHA256 of its period's number, so every instance holding the key
/// issues and accepts the same ones without sharing state; the current and
/// the previous period's nonce are accepted.
#[derive(Clone)]
pub struct NonceKey(Hmac<Sha256>);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 32;

    /// A key from secret bytes; `None` when shorter than [`Self::MIN_LEN`].
    pub fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < Self::MIN_LEN {
            return None;
        }
        Hmac::<Sha256>::new_from_slice(secret).ok().map(Self)
    }

    /// A key as configurations give it: base64url of at least
    /// [`Self::MIN_LEN`] bytes; `None` otherwise.
    pub fn from_b64url(text: &str) -> Option<Self> {
        Self::new(&json::decode_b64url(text)?)
    }

    /// The nonce of the period `now` falls in, `back` periods ago.
    pub fn nonce(&self, now: Time, period_s: u64, back: u64) -> String {
        let period = (now.secs() / period_s.max(1)).saturating_sub(back);
        let mut mac = self.0.clone();
        mac.update(b"erpgate-dpop-nonce");
        mac.update(&period.to_le_bytes());
        json::encode_b64url(&mac.finalize().into_bytes())
    }

    /// The nonces a proof may carry now: this period's and the previous one's.
    pub fn accepted(&self, now: Time, period_s: u64) -> [String; 2] {
        [self.nonce(now, period_s, 0), self.nonce(now, period_s, 1)]
    }
}

#[cfg(test)]
mod tests;

//! JWT access-token verification: strict decoding, header checks, key selection,
//! the signature, and ERP.net's claims. Each failure has its own [`TokenError`].

mod claims;
mod header;

pub use claims::{ClaimRules, principal_from_claims};
pub use header::{Header, parse_header, typ_matches};

use serde_json::{Map, Value};

use crate::json::{self, JsonError, JsonLimits};

/// Why a JWT was refused. Every variant maps to `invalid_token` on the wire; the
/// variant itself goes to logs, metrics and the test corpus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is longer than the policy allows.
    #[error("token exceeds the size limit")]
    TooLarge,
    /// Not three dot-separated segments.
    #[error("malformed compact serialisation")]
    Malformed,
    /// A segment is not strict, unpadded, canonical base64url.
    #[error("invalid base64url")]
    InvalidBase64,
    /// The JOSE header is too large.
    #[error("JOSE header exceeds the size limit")]
    HeaderTooLarge,
    /// The claims are too large.
    #[error("claims exceed the size limit")]
    ClaimsTooLarge,
    /// JSON nests deeper than allowed.
    #[error("JSON nesting too deep")]
    JsonTooDeep,
    /// A JSON object repeats a member name.
    #[error("duplicate JSON member")]
    DuplicateMember,
    /// The header or claims are not a JSON object.
    #[error("header or claims are not valid JSON objects")]
    InvalidJson,
    /// `alg: none`, in any spelling.
    #[error("unsecured JWT (alg none)")]
    AlgNone,
    /// `alg` is missing or not an algorithm erpgate knows.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// `alg` is known but the issuer does not allow it.
    #[error("algorithm not allowed for this issuer")]
    AlgorithmNotAllowed,
    /// `alg` disagrees with the algorithm bound to the selected key.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// The header lists `crit` extensions (none are supported), or uses `b64`.
    #[error("unsupported critical header")]
    UnknownCritical,
    /// The header names key material (`jku`, `jwk`, `x5u`, `x5c`), which is never trusted.
    #[error("header carries a key reference")]
    KeyReferenceHeader,
    /// `cty: JWT`: a nested token.
    #[error("nested JWTs are not accepted")]
    NestedToken,
    /// `kid` is not a bounded string without control characters.
    #[error("invalid kid")]
    InvalidKid,
    /// `iss` is missing or names no configured issuer.
    #[error("unknown issuer")]
    UnknownIssuer,
    /// No `kid` while the issuer has several keys.
    #[error("kid required: the issuer has several keys")]
    KidRequired,
    /// No key with this `kid`.
    #[error("no key with this kid")]
    UnknownKey,
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// `typ` is not the required type (by default `at+jwt`).
    #[error("wrong token type")]
    WrongType,
    /// A required claim is absent.
    #[error("missing claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an unusable value.
    #[error("invalid claim `{0}`")]
    InvalidClaim(&'static str),
    /// `aud` holds no configured audience.
    #[error("audience not accepted")]
    AudienceMismatch,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` lies in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` lies in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Older than the issuer's maximum token age.
    #[error("token too old")]
    TooOld,
    /// Listed as revoked by the revocation feed.
    #[error("token revoked")]
    Revoked,
    /// The token is bound to a DPoP key (`cnf.jkt`) and came as a bearer
    /// token, without proof of that key (RFC 9449 §7.2).
    #[error("the token is bound to a key and was sent as a bearer token")]
    BoundAsBearer,
    /// `cnf` names a binding other than a DPoP key (a client certificate,
    /// RFC 8705), which the edge cannot check.
    #[error("the token is bound by a method this edge cannot check")]
    UnsupportedConfirmation,
    /// `Authorization: DPoP` with a token bound to no key (RFC 9449 §7.1).
    #[error("the token is not bound to a DPoP key")]
    NotBound,
    /// The route accepts DPoP-bound tokens only, with their proof.
    #[error("this route accepts DPoP-bound tokens only")]
    DpopRequired,
}

impl TokenError {
    /// A stable snake_case code for logs, metrics and test vectors.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "token_too_large",
            TokenError::Malformed => "malformed_token",
            TokenError::InvalidBase64 => "invalid_base64",
            TokenError::HeaderTooLarge => "header_too_large",
            TokenError::ClaimsTooLarge => "claims_too_large",
            TokenError::JsonTooDeep => "json_too_deep",
            TokenError::DuplicateMember => "duplicate_member",
            TokenError::InvalidJson => "invalid_json",
            TokenError::AlgNone => "alg_none",
            TokenError::UnsupportedAlgorithm => "unsupported_alg",
            TokenError::AlgorithmNotAllowed => "alg_not_allowed",
            TokenError::AlgorithmMismatch => "alg_mismatch",
            TokenError::UnknownCritical => "unknown_crit",
            TokenError::KeyReferenceHeader => "key_reference_header",
            TokenError::NestedToken => "nested_jwt",
            TokenError::InvalidKid => "invalid_kid",
            TokenError::UnknownIssuer => "unknown_issuer",
            TokenError::KidRequired => "kid_required",
            TokenError::UnknownKey => "unknown_kid",
            TokenError::BadSignature => "bad_signature",
            TokenError::WrongType => "wrong_typ",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::AudienceMismatch => "wrong_audience",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::TooOld => "token_too_old",
            TokenError::Revoked => "revoked",
            TokenError::BoundAsBearer => "bound_as_bearer",
            TokenError::UnsupportedConfirmation => "unsupported_cnf",
            TokenError::NotBound => "not_bound",
            TokenError::DpopRequired => "dpop_required",
        }
    }

    /// Whether the same token will fail the same way later, so the rejection may
    /// be cached. Time-dependent and key-dependent failures are not.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            TokenError::UnknownKey
                | TokenError::NotYetValid
                | TokenError::IssuedInFuture
                | TokenError::KidRequired
        )
    }
}

/// Size and depth bounds for untrusted tokens.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest token, in bytes.
    pub max_token_bytes: usize,
    /// Largest decoded JOSE header, in bytes.
    pub max_header_bytes: usize,
    /// Deepest JSON nesting in the claims.
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_token_bytes: 8192,
            max_header_bytes: 1024,
            max_json_depth: 8,
        }
    }
}

/// A decoded, not yet verified token.
#[derive(Debug)]
pub struct Decoded<'t> {
    /// The JOSE header, parsed and bounded.
    pub header: Header,
    /// The claims object.
    pub claims: Map<String, Value>,
    /// `base64url(header) || '.' || base64url(payload)`.
    pub signing_input: &'t str,
    /// The raw signature bytes.
    pub signature: Vec<u8>,
}

fn map_json(err: JsonError, too_large: TokenError) -> TokenError {
    match err {
        JsonError::TooLarge { .. } => too_large,
        JsonError::TooDeep { .. } => TokenError::JsonTooDeep,
        JsonError::DuplicateMember => TokenError::DuplicateMember,
        JsonError::NotAnObject | JsonError::Syntax => TokenError::InvalidJson,
    }
}

/// Decodes a compact JWS strictly. Nothing is trusted yet.
pub fn decode<'t>(token: &'t str, limits: &Limits) -> Result<Decoded<'t>, TokenError> {
    if token.len() > limits.max_token_bytes {
        return Err(TokenError::TooLarge);
    }
    let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
    if payload_b64.contains('.') || header_b64.is_empty() || signature_b64.is_empty() {
        return Err(TokenError::Malformed);
    }
    // 4 base64 characters carry 3 bytes; refuse before decoding anything big.
    if header_b64.len() > limits.max_header_bytes.saturating_mul(4) / 3 + 4 {
        return Err(TokenError::HeaderTooLarge);
    }
    let header_bytes = json::decode_b64url(header_b64).ok_or(TokenError::InvalidBase64)?;
    let header_map = json::parse_object(
        &header_bytes,
        JsonLimits {
            max_bytes: limits.max_header_bytes,
            max_depth: 2,
        },
    )
    .map_err(|e| map_json(e, TokenError::HeaderTooLarge))?;
    let header = parse_header(&header_map)?;
    let payload = json::decode_b64url(payload_b64).ok_or(TokenError::InvalidBase64)?;
    let claims = json::parse_object(
        &payload,
        JsonLimits {
            max_bytes: limits.max_token_bytes,
            max_depth: limits.max_json_depth,
        },
    )
    .map_err(|e| map_json(e, TokenError::ClaimsTooLarge))?;
    let signature = json::decode_b64url(signature_b64).ok_or(TokenError::InvalidBase64)?;
    Ok(Decoded {
        header,
        claims,
        signing_input,
        signature,
    })
}

/// The unverified `iss`, used only to pick the issuer's key set.
pub fn unverified_issuer(claims: &Map<String, Value>) -> Result<&str, TokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) => Ok(iss),
        Some(_) => Err(TokenError::InvalidClaim("iss")),
        None => Err(TokenError::MissingClaim("iss")),
    }
}

//! DPoP at the token endpoint (RFC 9449 §5): the proof a token request
//! carries is checked by the core's rules (`erpgate::dpop`), its `jti` may
//! be used once, and the key's thumbprint is what the tokens get bound to.
//!
//! Replays are caught per host process: a proof is single-use within its
//! window on the host that saw it. Replicas do not share the cache; a proof
//! replayed at another replica still needs the request's grant (a code, a
//! refresh token, client authentication), which are single-use or secret
//! store-wide.

use axum::http::HeaderMap;
use erpgate::Time;
use erpgate::dpop::{self, DpopError, NonceKey, ProofCheck};
use erpgate::keys::Algorithm;

use super::error::OAuthError;
use super::replay::{LEEWAY_S, MAX_AGE_S};
use crate::service::Identity;
use erpgate_store::records::TrustedApp;

/// The algorithms a proof may use, as discovery advertises them.
pub const DPOP_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// How long one server nonce is issued; the previous one stays accepted.
const NONCE_PERIOD_S: u64 = 300;

/// The key server nonces are minted under: the hosts' shared cookie key,
/// so every replica issues and accepts the same nonces.
fn nonce_key(state: &Identity) -> Option<NonceKey> {
    NonceKey::new(&state.signin.key()?)
}

/// This period's nonce.
fn nonce_now(state: &Identity) -> Option<String> {
    let now = Time::from_secs(state.clock.now());
    nonce_key(state).map(|key| key.nonce(now, NONCE_PERIOD_S, 0))
}

/// The nonce a client should use now, when the instance requires nonces.
pub fn current_nonce(state: &Identity) -> Option<String> {
    state
        .config
        .instance
        .dpop_nonces
        .then(|| nonce_now(state))
        .flatten()
}

fn refused(e: DpopError, state: &Identity) -> OAuthError {
    match e {
        DpopError::NonceRequired => match nonce_now(state) {
            Some(nonce) => OAuthError::use_dpop_nonce(nonce),
            None => OAuthError::invalid_dpop_proof(e.to_string()),
        },
        other => OAuthError::invalid_dpop_proof(other.to_string()),
    }
}

/// Refuses a token request without a proof from an app that requires DPoP.
pub fn required_by(app: &TrustedApp, jkt: Option<&str>) -> Result<(), OAuthError> {
    if app.require_dpop && jkt.is_none() {
        return Err(OAuthError::invalid_dpop_proof(
            "this application must prove a DPoP key",
        ));
    }
    Ok(())
}

/// The request a proof must name: its method, the endpoint it was sent
/// to, and the access token it came with (none at the token endpoint).
pub struct Target<'a> {
    /// `POST` at the token endpoint.
    pub method: &'a str,
    /// The endpoint's URL.
    pub uri: &'a str,
    /// The access token presented with the proof.
    pub access_token: Option<&'a str>,
}

/// The thumbprint of the key a request proves, or `None` without a
/// `DPoP` header; a bad, replayed or second proof is an error.
pub fn proven_key(
    state: &Identity,
    headers: &HeaderMap,
    target: &Target<'_>,
) -> Result<Option<String>, OAuthError> {
    let pairs: Vec<(&str, &[u8])> = headers
        .get_all("dpop")
        .iter()
        .map(|v| ("dpop", v.as_bytes()))
        .collect();
    if pairs.is_empty() {
        return Ok(None);
    }
    let proof = dpop::proof_header(&pairs).map_err(|e| refused(e, state))?;
    let now = state.clock.now();
    let accepted = if state.config.instance.dpop_nonces {
        let key = nonce_key(state).ok_or_else(|| refused(DpopError::NonceRequired, state))?;
        Some(key.accepted(Time::from_secs(now), NONCE_PERIOD_S))
    } else {
        None
    };
    let nonces: Vec<&str> = accepted.iter().flatten().map(String::as_str).collect();
    let check = ProofCheck {
        method: target.method,
        uri: target.uri,
        now: Time::from_secs(now),
        max_age_s: MAX_AGE_S,
        leeway_s: LEEWAY_S,
        algorithms: &DPOP_ALGORITHMS,
        access_token_sha256: target
            .access_token
            .map(|t| erpgate::cache::TokenHash::of(t).0),
        nonces: &nonces,
    };
    let unverified = dpop::decode(proof, &check).map_err(|e| refused(e, state))?;
    unverified.verify().map_err(|e| refused(e, state))?;
    if !state
        .dpop_replays
        .first_use(unverified.replay_id, unverified.iat, now)
    {
        return Err(refused(DpopError::Replayed, state));
    }
    Ok(Some(unverified.jkt))
}

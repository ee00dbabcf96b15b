//! Host crypto through Envoy's `verify_signature` foreign function: probing
//! for it once, DER forms of keys made once per key, and one check.

use std::collections::HashMap;
use std::rc::Rc;

use super::host::{Host, STATUS_NOT_FOUND};
use crate::adapters::foreign;
use crate::engine::{Outcome, VerifyRequest};
use crate::keys::PublicJwk;

/// Whether the host answers `verify_signature`. Empty arguments carry no key,
/// which Envoy refuses with `BadArgument`; a host without the function says
/// `NotFound`.
pub(super) fn probe(host: &impl Host) -> bool {
    !matches!(
        host.call_foreign_function(foreign::VERIFY_SIGNATURE, &[]),
        Err(STATUS_NOT_FOUND)
    )
}

/// DER keys for `verify_signature`, by the key's fingerprint: made once per
/// key.
#[derive(Default)]
pub(super) struct DerKeys(HashMap<String, Rc<[u8]>>);

impl DerKeys {
    /// Keys a JWKS holds at once, at most; a rotation clears the rest.
    const MAX: usize = 64;

    fn get(&mut self, key: &PublicJwk) -> Option<Rc<[u8]>> {
        if let Some(der) = self.0.get(&key.fingerprint) {
            return Some(der.clone());
        }
        let der: Rc<[u8]> = foreign::spki_der(&key.jwk)?.into();
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(key.fingerprint.clone(), der.clone());
        Some(der)
    }
}

/// A signature check through the host; `Failed` when it cannot answer.
pub(super) fn verify(host: &impl Host, keys: &mut DerKeys, request: &VerifyRequest) -> Outcome {
    // A JOSE ECDSA signature that is not r||s is invalid (RFC 7518 §3.4),
    // not a question for the host.
    if request.alg == crate::Algorithm::ES256 && request.signature.len() != 64 {
        return Outcome::Verified(false);
    }
    let Some(args) = keys.get(&request.key).and_then(|der| {
        foreign::encode_request(
            request.alg,
            &der,
            &request.signature,
            &request.signing_input,
        )
    }) else {
        return Outcome::Failed;
    };
    match host
        .call_foreign_function(foreign::VERIFY_SIGNATURE, &args)
        .ok()
        .and_then(|bytes| foreign::decode_result(&bytes))
    {
        Some(valid) => Outcome::Verified(valid),
        None => Outcome::Failed,
    }
}

//! DPoP at the edge (RFC 9449 §7): `Authorization: DPoP` with its proof,
//! and the binding check every verified principal passes before its route
//! is authorized: a bound token needs its key's proof, a `DPoP` token must
//! be bound, and a route may accept bound tokens only. The check runs on
//! every request, cached verdict or not: a proof is single-use, the token
//! is not.

use std::sync::Arc;

use crate::cache::TokenHash;
use crate::credential::is_reference_token;
use crate::decision::{Identity, Reason, Unavailable};
use crate::dpop::{self, DpopError, ProofCheck, ProofKeys, UnverifiedProof};
use crate::jwt::TokenError;
use crate::request::Request;
use crate::time::Time;

use super::presented::{Presented, ProofWait};
use super::step::{Awaited, Outcome, RouteRef, Step, Suspended, VerifyRequest};
use super::{Engine, State};

impl Engine {
    /// `Authorization: DPoP <token>`: the proof is read now and checked once
    /// the token's principal is known ([`Engine::bind`]).
    pub(super) fn start_dpop(
        &self,
        route: RouteRef,
        request: &Request<'_>,
        token: &str,
        now: Time,
        state: &mut State,
    ) -> Step {
        let proof = match dpop::proof_header(request.headers) {
            Ok(proof) => proof,
            Err(e) => return self.deny(Reason::Dpop(e), route),
        };
        state.presented = Some(Box::new(Presented {
            proof: proof.to_owned(),
            token: token.to_owned(),
            token_sha256: None,
            method: request.method.to_owned(),
            uri: request.uri(),
        }));
        if is_reference_token(token) {
            self.start_reference(route, token, now, state)
        } else {
            self.start_jwt(route, token, now, state)
        }
    }

    /// A verified principal that passed its route's scopes and kinds: the
    /// allow, once its binding holds (a bound token needs its key's proof,
    /// a `DPoP` token must be bound, a route may require DPoP), or the
    /// denial; or the proof's signature asked of host crypto.
    pub(super) fn bind(
        &self,
        route: RouteRef,
        identity: Arc<Identity>,
        from_cache: bool,
        now: Time,
        state: &mut State,
    ) -> Step {
        let required = route
            .with_reached()
            .any(|r| self.route_def(r).is_some_and(|r| r.require_dpop));
        let principal = &identity.principal;
        let refusal = match (state.presented.take(), principal.jkt()) {
            (None, Some(_)) => Reason::Token(TokenError::BoundAsBearer),
            (None, None) if required => Reason::Token(TokenError::DpopRequired),
            (None, None) => return self.allow(route, Some(identity), from_cache),
            (Some(_), None) => Reason::Token(TokenError::NotBound),
            (Some(p), Some(jkt)) => match self.check_proof(&p, jkt, now, &mut state.proof_keys) {
                Ok(proof) => return self.prove(route, identity, from_cache, proof, now, state),
                Err(refusal) => refusal,
            },
        };
        self.deny_for(refusal, route, Some(principal))
    }

    /// The proof's claims and key (with a current server nonce where the
    /// policy asks for one), and that the key is the token's.
    fn check_proof<'p>(
        &self,
        p: &'p Presented,
        jkt: &str,
        now: Time,
        keys: &mut ProofKeys,
    ) -> Result<UnverifiedProof<'p>, Reason> {
        let rules = &self.policy.dpop;
        let accepted = match (&self.nonce_key, rules.nonces) {
            (_, false) => None,
            (Some(key), true) => Some(key.accepted(now, rules.nonce_period_s)),
            (None, true) => return Err(Reason::Unavailable(Unavailable::NoDecision)),
        };
        let nonces: Vec<&str> = accepted.iter().flatten().map(String::as_str).collect();
        let check = ProofCheck {
            method: &p.method,
            uri: p.uri.as_deref().ok_or(Reason::Dpop(DpopError::Uri))?,
            now,
            max_age_s: rules.max_age_s,
            leeway_s: rules.leeway_s,
            algorithms: &rules.algorithms,
            access_token_sha256: Some(p.token_sha256.unwrap_or_else(|| TokenHash::of(&p.token)).0),
            nonces: &nonces,
        };
        let proof =
            dpop::decode_remembering(&p.proof, &check, keys).map_err(|e| match (e, accepted) {
                (DpopError::NonceRequired, Some([current, _])) => Reason::DpopNonce(current.into()),
                (e, _) => Reason::Dpop(e),
            })?;
        if proof.jkt != jkt {
            return Err(Reason::Dpop(DpopError::WrongKey));
        }
        Ok(proof)
    }

    /// The proof's signature (by host crypto where the adapter has it),
    /// then that it was not seen before.
    fn prove(
        &self,
        route: RouteRef,
        identity: Arc<Identity>,
        from_cache: bool,
        proof: UnverifiedProof<'_>,
        now: Time,
        state: &mut State,
    ) -> Step {
        let rules = &self.policy.dpop;
        let wait = ProofWait {
            identity,
            from_cache,
            replay_id: proof.replay_id,
            until: proof
                .iat
                .saturating_add(rules.max_age_s)
                .saturating_add(rules.leeway_s),
        };
        let alg = proof.key.algorithm();
        if self.host_crypto.contains(&alg)
            && let Some(key) = proof.key.host_key()
        {
            return Step::Verify {
                request: VerifyRequest {
                    alg,
                    key: Arc::clone(key),
                    signing_input: proof.signing_input.as_bytes().to_vec(),
                    signature: proof.signature,
                },
                pending: Suspended {
                    route,
                    awaited: Awaited::Proof(Box::new(wait)),
                    folded: Vec::new(),
                    presented: None,
                },
            };
        }
        let outcome = Outcome::Verified(proof.verify().is_ok());
        self.resume_after_proof(route, wait, &outcome, now, state)
    }

    /// Continues after the proof's signature was checked.
    pub(super) fn resume_after_proof(
        &self,
        route: RouteRef,
        wait: ProofWait,
        outcome: &Outcome,
        now: Time,
        state: &mut State,
    ) -> Step {
        let principal = &wait.identity.principal;
        let refusal = match outcome {
            Outcome::Verified(true) => {
                // This instance's memory first, then the store every
                // instance shares (Envoy's worker VMs).
                let (id, until) = (wait.replay_id, wait.until);
                if state.replays.first_use(id, until, now.secs())
                    && state.shared_first_use(&self.policy, &id, until, now)
                {
                    return self.allow(route, Some(wait.identity), wait.from_cache);
                }
                Reason::Dpop(DpopError::Replayed)
            }
            Outcome::Verified(false) => Reason::Dpop(DpopError::Signature),
            // A host that cannot answer must not turn into an allow.
            _ => Reason::Unavailable(Unavailable::KeysUnavailable),
        };
        self.deny_for(refusal, route, Some(principal))
    }
}

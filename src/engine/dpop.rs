//! DPoP at the edge (RFC 9449 §7): `Authorization: DPoP` with its proof,
//! and the binding check every verified principal passes before its route
//! is authorized: a bound token needs its key's proof, a `DPoP` token must
//! be bound, and a route may accept bound tokens only. The check runs on
//! every request, cached verdict or not: a proof is single-use, the token
//! is not.

use crate::credential::is_reference_token;
use crate::decision::Reason;
use crate::dpop::{self, DpopError, ProofCheck};
use crate::jwt::TokenError;
use crate::principal::Principal;
use crate::request::Request;
use crate::time::Time;

use super::presented::Presented;
use super::step::{RouteRef, Step};
use super::{Engine, State};

impl Engine {
    /// `Authorization: DPoP <token>`: the proof is read now and checked once
    /// the token's principal is known ([`Engine::binding`]).
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
            method: request.method.to_owned(),
            uri: request.uri(),
        }));
        if is_reference_token(token) {
            self.start_reference(route, token, now, state)
        } else {
            self.start_jwt(route, token, now, state)
        }
    }

    /// Why a verified principal may not pass on `route` as it was
    /// presented, if it may not.
    pub(super) fn binding(
        &self,
        route: RouteRef,
        principal: &Principal,
        now: Time,
        state: &mut State,
    ) -> Option<Reason> {
        let reached = route.also().map(|i| RouteRef {
            index: Some(i),
            also: 0,
        });
        let required = std::iter::once(route)
            .chain(reached)
            .any(|r| self.route_def(r).is_some_and(|r| r.require_dpop));
        let presented = state.presented.take();
        let refusal = match (presented.as_deref(), principal.jkt()) {
            (None, Some(_)) => Some(Reason::Token(TokenError::BoundAsBearer)),
            (None, None) if required => Some(Reason::Token(TokenError::DpopRequired)),
            (None, None) => None,
            (Some(_), None) => Some(Reason::Token(TokenError::NotBound)),
            (Some(p), Some(jkt)) => self.check_proof(p, jkt, now, state).err().map(Reason::Dpop),
        };
        state.presented = presented;
        refusal
    }

    /// The proof: its claims and key, the token's binding, its signature,
    /// then that it was not seen before.
    fn check_proof(
        &self,
        p: &Presented,
        jkt: &str,
        now: Time,
        state: &mut State,
    ) -> Result<(), DpopError> {
        let rules = &self.policy.dpop;
        let check = ProofCheck {
            method: &p.method,
            uri: p.uri.as_deref().ok_or(DpopError::Uri)?,
            now,
            max_age_s: rules.max_age_s,
            leeway_s: rules.leeway_s,
            algorithms: &rules.algorithms,
            access_token: Some(&p.token),
            nonces: &[],
        };
        let proof = dpop::decode(&p.proof, &check)?;
        if proof.jkt != jkt {
            return Err(DpopError::WrongKey);
        }
        proof.verify()?;
        let until = proof
            .iat
            .saturating_add(rules.max_age_s)
            .saturating_add(rules.leeway_s);
        if state.replays.first_use(proof.replay_id, until, now.secs()) {
            Ok(())
        } else {
            Err(DpopError::Replayed)
        }
    }
}

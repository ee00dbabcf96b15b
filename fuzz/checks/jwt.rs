//! JWT decoding and verification through the engine, under a policy with
//! real keys (RS256, PS256, ES256, EdDSA): arbitrary bearer tokens never
//! panic and never allow (no input is signed by the fixture keys' owners).

use std::sync::OnceLock;

use erpgate::{Decision, Engine, Policy, Request, Step, Time};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let policy =
            Policy::compile(include_str!("../policy.json")).expect("the fuzz policy compiles");
        Engine::new(policy)
    })
}

/// One input: panics on a failed property, like the fuzz target.
pub fn run(data: &[u8]) {
    let engine = engine();
    let mut state = engine.new_state([7; 16]);
    let mut header = b"Bearer ".to_vec();
    header.extend_from_slice(data);
    let headers: [(&str, &[u8]); 1] = [("authorization", &header)];
    let request = Request::new("GET", "/api/domain/odata/Crm_Customers", &headers);
    let step = engine.start(&request, Time::from_secs(1_766_505_200), &mut state);
    // Inline keys only: the engine never needs a call, and nothing forged passes.
    match step {
        Step::Decided(Decision::Deny(_)) => {}
        Step::Decided(Decision::Allow(_)) => panic!("an unsigned input was allowed"),
        other => panic!("unexpected step {other:?}"),
    }
    // Decoding alone, with the policy's limits.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = erpgate::jwt::decode(text, &engine.policy().limits);
    }
}

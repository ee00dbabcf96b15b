//! The policy compiler over arbitrary documents: errors, never panics; a
//! document that compiles compiles again to the same fingerprint.

/// One input: panics on a failed property, like the fuzz target.
pub fn run(data: &[u8]) {
    if let Ok(policy) = erpgate::Policy::compile_bytes(data) {
        let again = erpgate::Policy::compile_bytes(data).expect("deterministic");
        assert_eq!(policy.fingerprint, again.fingerprint);
    }
}

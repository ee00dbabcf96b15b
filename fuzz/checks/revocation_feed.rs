//! Revocation-feed page parsing over arbitrary bodies.

/// One input: panics on a failed property, like the fuzz target.
pub fn run(data: &[u8]) {
    let _ = erpgate::revocation::parse_page(200, data);
}

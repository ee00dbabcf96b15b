//! RFC 7662 response parsing over arbitrary bodies and statuses.

/// One input: panics on a failed property, like the fuzz target.
pub fn run(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (if *s < 128 { 200 } else { 100 + u16::from(*s) }, rest),
        None => (200, data),
    };
    if let Ok(reply) = erpgate::introspection::parse_response(status, body) {
        // Whatever parses as active yields a principal or a clear refusal.
        if reply.active {
            let _ = reply.reference_principal();
        }
    }
}

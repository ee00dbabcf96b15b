//! Revocation-feed page parsing over arbitrary bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = erpgate::revocation::parse_page(200, data);
});

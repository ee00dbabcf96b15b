//! Every fuzz target's property over its committed seeds, as an ordinary
//! test: the same check functions the cargo-fuzz targets call
//! (`fuzz/checks/`), so a seed that breaks a property fails `cargo test`
//! without a sanitizer build. The timed fuzzing is `scripts/fuzz`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

#[path = "../fuzz/checks/credentials.rs"]
mod credentials;
#[path = "../fuzz/checks/introspection.rs"]
mod introspection;
#[path = "../fuzz/checks/jwt.rs"]
mod jwt;
#[path = "../fuzz/checks/policy.rs"]
mod policy;
#[path = "../fuzz/checks/proxy_wasm_map.rs"]
mod proxy_wasm_map;
#[path = "../fuzz/checks/revocation_feed.rs"]
mod revocation_feed;

/// Runs `check` over every seed of `target`; the seed count, so a renamed
/// folder cannot pass by running nothing.
fn seeds(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        check(&bytes);
        // Every prefix too: truncated inputs are where parsers slip.
        for end in (0..bytes.len()).step_by(bytes.len().div_ceil(64).max(1)) {
            check(&bytes[..end]);
        }
        count += 1;
    }
    count
}

#[test]
fn every_fuzz_target_holds_on_its_seeds() {
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 6] = [
        ("credentials", credentials::run),
        ("introspection", introspection::run),
        ("jwt", jwt::run),
        ("policy", policy::run),
        ("proxy_wasm_map", proxy_wasm_map::run),
        ("revocation_feed", revocation_feed::run),
    ];
    for (target, check) in targets {
        assert!(seeds(target, check) > 0, "no seeds for {target}");
    }
}

//! The `host_parsers` fuzz target's property over its committed seeds, as an
//! ordinary test (the core's targets run from `tests/fuzz_seeds.rs` at the
//! repository root; this one needs the host crates). The timed fuzzing is
//! `scripts/fuzz`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../fuzz/checks/host_parsers.rs"]
mod host_parsers;

#[test]
fn the_host_parsers_hold_on_their_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/host_parsers");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        host_parsers::run(&bytes);
        // Every prefix too: truncated inputs are where parsers slip.
        for end in 0..bytes.len() {
            host_parsers::run(&bytes[..end]);
        }
        count += 1;
    }
    assert!(count >= 5, "{count} seeds");
}

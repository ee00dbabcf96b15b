//! Runs the whole vector corpus through the native core.

use erpgate_testkit::{NativeHarness, run_corpus};

#[test]
fn native_core_passes_every_vector() {
    let (count, failures) = run_corpus(&mut NativeHarness).unwrap();
    assert!(
        failures.is_empty(),
        "{} of {count} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        count >= 80,
        "the corpus must hold at least 80 vectors, it holds {count}"
    );
}

//! The whole corpus through the worker module: in real workerd and in Node.
//! Each must meet every expectation and agree with the native core exactly.

use erpgate_testkit::{check_against_native, js, prepare_corpus};

#[test]
fn workerd_agrees_with_native_on_every_vector() {
    let vectors = prepare_corpus().unwrap();
    let results = js::run_in_workerd(&vectors).unwrap();
    assert_eq!(results.len(), vectors.len());
    assert!(results.values().all(Result::is_ok));
    let failures = check_against_native("workerd", &vectors, &results);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn node_agrees_with_native_on_every_vector() {
    let vectors = prepare_corpus().unwrap();
    let results = js::run_in_node(&vectors).unwrap();
    assert_eq!(results.len(), vectors.len());
    assert!(results.values().all(Result::is_ok));
    let failures = check_against_native("node", &vectors, &results);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

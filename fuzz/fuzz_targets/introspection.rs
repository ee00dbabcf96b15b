//! The fuzz target for `checks/introspection.rs`, which also runs over the seeds as
//! an ordinary test (`tests/fuzz_seeds.rs` at the repository root).
#![no_main]

#[path = "../checks/introspection.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));

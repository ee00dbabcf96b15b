//! The fuzz target for `checks/host_parsers.rs`, which also runs over the
//! seeds as an ordinary test (`host/cli/tests/fuzz_seeds.rs`).
#![no_main]

#[path = "../checks/host_parsers.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));

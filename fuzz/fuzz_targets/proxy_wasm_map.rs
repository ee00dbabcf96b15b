//! The fuzz target for `checks/proxy_wasm_map.rs`, which also runs over the seeds as
//! an ordinary test (`tests/fuzz_seeds.rs` at the repository root).
#![no_main]

#[path = "../checks/proxy_wasm_map.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));

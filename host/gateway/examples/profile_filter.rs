//! The filter under wasmtime's guest profiler: cache hits, then first-seen
//! RS256 tokens checked through `verify_signature`. Writes Firefox Profiler
//! JSON (open it at profiler.firefox.com, or sum it by function with
//! `benches/host/profile-summary.py`).
//!
//! `scripts/build-filter && cargo run --release -p erpgate-gateway --features guest-profiler --example profile_filter -- hit|first OUT.json [FILTER.wasm]`
//!
//! The deployed filter carries no function names; for a readable profile,
//! pass a build that keeps them, through `wasm-opt` as `scripts/build-filter`
//! does but with `-g` (rustc's own output is refused at link time:
//! "incompatible import type for `env::proxy_resolve_shared_queue`"):
//! `CARGO_PROFILE_WASM_STRIP=false cargo build -p erpgate --lib --target wasm32-wasip1 --profile wasm --features envoy`,
//! then `tests/worker/node_modules/.bin/wasm-opt -Oz -g` with the
//! `--enable-…` flags of `scripts/build-filter` on
//! `target/wasm32-wasip1/wasm/erpgate.wasm`.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use erpgate_gateway::vm::{FilterModule, Verdict, Vm};
use erpgate_testkit::{DEFAULT_NOW, Fixtures, preset_claims, test_policy};
use serde_json::{Value, json};

fn decide(vm: &mut Vm, token: &str) {
    let headers = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api/domain/odata/Crm_Customers".to_vec()),
        (":authority".into(), b"api".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ];
    let (id, progress) = vm.request(headers, HashMap::new(), Vec::new()).unwrap();
    assert!(matches!(progress.verdict(id), Some(Verdict::Continue(_))));
    vm.finish(id).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, out) = (
        args.get(1).expect("hit|first"),
        args.get(2).expect("OUT.json"),
    );
    let fixtures = Fixtures::load_default().unwrap();
    let policy: Value = serde_json::from_str(&test_policy(&fixtures).unwrap()).unwrap();
    let config = json!({ "policy": policy, "tick_ms": 60000 })
        .to_string()
        .into_bytes();
    let wasm = std::fs::read(args.get(3).map_or(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/envoy/erpgate_filter.wasm"
        ),
        String::as_str,
    ))
    .unwrap();
    let module = FilterModule::load(&wasm, config, HashMap::new()).unwrap();
    let mut vm = module.instantiate().unwrap();
    vm.set_time_ms(Some(DEFAULT_NOW * 1000));
    let mint = |n: usize| {
        let mut claims = preset_claims(&fixtures, "service", DEFAULT_NOW).unwrap();
        claims["jti"] = json!(format!("{n:032X}"));
        fixtures.mint("rsa-a", &claims).unwrap()
    };
    let tokens: Vec<String> = match mode.as_str() {
        "hit" => vec![mint(0); 200_000],
        _ => (0..3_000).map(mint).collect(),
    };
    decide(&mut vm, &mint(0));
    let file = std::fs::File::create(out).unwrap();
    vm.profile(&module, Duration::from_micros(20), file, |vm| {
        for t in &tokens {
            decide(vm, t);
        }
    })
    .unwrap();
}

//! Per-request cost of the Envoy filter inside the gateway's proxy-wasm
//! runtime (wasmtime), next to native jwt-simple (BoringSSL) in the same run.
//!
//! `scripts/build-filter && cargo bench -p erpgate-host --bench gateway`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use erpgate_gateway::vm::{FilterModule, Verdict, Vm};
use erpgate_testkit::{DEFAULT_NOW, Fixtures, preset_claims, test_policy};
use jwt_simple::prelude::{NoCustomClaims, RS256PublicKey, RSAPublicKeyLike, VerificationOptions};
use serde_json::{Value, json};

fn headers(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api/domain/odata/Crm_Customers".to_vec()),
        (":authority".into(), b"api".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ]
}

fn decide(vm: &mut Vm, token: &str) {
    let (id, progress) = vm
        .request(headers(token), HashMap::new(), Vec::new())
        .unwrap();
    let verdict = progress.verdict(id);
    assert!(matches!(verdict, Some(Verdict::Continue(_))), "{verdict:?}");
    vm.finish(id).unwrap();
}

fn benches(c: &mut Criterion) {
    let fixtures = Fixtures::load_default().unwrap();
    let policy: Value = serde_json::from_str(&test_policy(&fixtures).unwrap()).unwrap();
    let config = json!({ "policy": policy, "tick_ms": 60000 })
        .to_string()
        .into_bytes();
    let wasm = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/envoy/erpgate_filter.wasm"
    ))
    .unwrap();
    let module = FilterModule::load(&wasm, config.clone(), HashMap::new()).unwrap();
    let mut vm = module.instantiate().unwrap();
    vm.set_time_ms(Some(DEFAULT_NOW * 1000));
    // The same filter on a host without `verify_signature`: RSA in wasm.
    let mut vm_wasm = module
        .reconfigure(config, HashMap::new())
        .with_verify_signature(false)
        .instantiate()
        .unwrap();
    vm_wasm.set_time_ms(Some(DEFAULT_NOW * 1000));
    let mut serial = 0u64;
    let mut mint = move |key: &str| {
        serial += 1;
        let mut claims = preset_claims(&fixtures, "service", DEFAULT_NOW).unwrap();
        claims["jti"] = json!(format!("{serial:032X}"));
        fixtures.mint(key, &claims).unwrap()
    };
    let mut group = c.benchmark_group("gateway");
    group.sample_size(30);
    let cached = mint("rsa-a");
    decide(&mut vm, &cached);
    group.bench_function("cache_hit", |b| {
        b.iter(|| decide(&mut vm, black_box(&cached)))
    });
    group.bench_function("first_seen_rs256_verify_signature", |b| {
        b.iter_batched(
            || mint("rsa-a"),
            |t| decide(&mut vm, &t),
            BatchSize::SmallInput,
        )
    });
    for (name, key) in [
        ("first_seen_rs256_wasm", "rsa-a"),
        ("first_seen_es256_wasm", "ec-a"),
        ("first_seen_eddsa_wasm", "ed-a"),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || mint(key),
                |t| decide(&mut vm_wasm, &t),
                BatchSize::SmallInput,
            )
        });
    }
    // The native peer in the same run: jwt-simple (BoringSSL) verifying RS256.
    let token = mint("rsa-a");
    let jwk = Fixtures::load_default()
        .unwrap()
        .key("rsa-a")
        .unwrap()
        .public_jwk()
        .unwrap()
        .to_string();
    let pk = RS256PublicKey::from_jwk(&jwk).unwrap();
    let opts = || {
        Some(VerificationOptions {
            artificial_time: Some(jwt_simple::prelude::UnixTimeStamp::from_secs(DEFAULT_NOW)),
            ..Default::default()
        })
    };
    pk.verify_token::<NoCustomClaims>(&token, opts()).unwrap();
    group.bench_function("native_jwt_simple_rs256_verify", |b| {
        b.iter(|| pk.verify_token::<NoCustomClaims>(black_box(&token), opts()))
    });
    group.finish();
}

criterion_group!(gateway, benches);
criterion_main!(gateway);

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
use erpgate::adapters::foreign;
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

/// The URI DPoP proofs in this bench name (`:scheme`, `:authority`, path).
const HTU: &str = "https://api/api/domain/odata/Crm_Customers";

/// A cache-hit request with `Authorization: DPoP` and a fresh proof.
fn decide_dpop(vm: &mut Vm, token: &str, proof: &str) {
    let headers = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api/domain/odata/Crm_Customers".to_vec()),
        (":authority".into(), b"api".to_vec()),
        (":scheme".into(), b"https".to_vec()),
        ("authorization".into(), format!("DPoP {token}").into_bytes()),
        ("dpop".into(), proof.as_bytes().to_vec()),
    ];
    let (id, progress) = vm.request(headers, HashMap::new(), Vec::new()).unwrap();
    let verdict = progress.verdict(id);
    assert!(matches!(verdict, Some(Verdict::Continue(_))), "{verdict:?}");
    vm.finish(id).unwrap();
}

/// A token bound to fixture `key`'s DPoP key, and proofs for it.
struct Bound {
    token: String,
    key: &'static str,
    /// Which bound token of this run: proofs' `jti`s are unique per key.
    n: u64,
    serial: u64,
}

impl Bound {
    fn new(fixtures: &Fixtures, key: &'static str) -> Self {
        let mut claims = preset_claims(fixtures, "service", DEFAULT_NOW).unwrap();
        let jwk = fixtures.key(key).unwrap().public_jwk().unwrap();
        let jkt = erpgate::dpop::thumbprint(jwk.as_object().unwrap()).unwrap();
        claims["cnf"] = json!({ "jkt": jkt });
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        claims["jti"] = json!(format!("BOUND-{key}-{n}"));
        let token = fixtures.mint("rsa-a", &claims).unwrap();
        Bound {
            token,
            key,
            n,
            serial: 0,
        }
    }

    /// A fresh proof: a new `jti` each time.
    fn proof(&mut self, fixtures: &Fixtures) -> String {
        self.serial += 1;
        let claims = json!({
            "jti": format!("{}-{}-{}", self.key, self.n, self.serial),
            "htm": "GET",
            "htu": HTU,
            "iat": DEFAULT_NOW,
            "ath": erpgate::dpop::token_hash(&self.token),
        });
        erpgate_testkit::dpop_proof(fixtures, self.key, &claims, &json!({})).unwrap()
    }
}

fn decide(vm: &mut Vm, token: &str) {
    let headers = if token.is_empty() {
        // A public route without a credential: the filter's fixed cost.
        vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/health".to_vec()),
            (":authority".into(), b"api".to_vec()),
        ]
    } else {
        headers(token)
    };
    let (id, progress) = vm.request(headers, HashMap::new(), Vec::new()).unwrap();
    let verdict = progress.verdict(id);
    assert!(matches!(verdict, Some(Verdict::Continue(_))), "{verdict:?}");
    vm.finish(id).unwrap();
}

/// Wasm instructions one request runs (wasmtime fuel), averaged over `n`
/// requests from `tokens`: a count that does not drift with the machine.
fn instructions(vm: &mut Vm, tokens: &mut dyn FnMut() -> String, n: u64) -> u64 {
    let mut total = 0;
    for _ in 0..n {
        let token = tokens();
        let before = vm.instructions().unwrap();
        decide(vm, &token);
        total += vm.instructions().unwrap() - before;
    }
    total / n
}

/// A VM of the filter on a host with `verify_signature`, and one on a host
/// without it (RSA and ECDSA in wasm).
fn vms(module: &FilterModule, config: &[u8]) -> (Vm, Vm) {
    let mut vm = module.instantiate().unwrap();
    vm.set_time_ms(Some(DEFAULT_NOW * 1000));
    let mut vm_wasm = module
        .reconfigure(config.to_vec(), HashMap::new())
        .with_verify_signature(false)
        .instantiate()
        .unwrap();
    vm_wasm.set_time_ms(Some(DEFAULT_NOW * 1000));
    (vm, vm_wasm)
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
    let (mut vm, mut vm_wasm) = vms(&module, &config);
    let mut serial = 0u64;
    let mut mint = move |key: &str| {
        serial += 1;
        let mut claims = preset_claims(&fixtures, "service", DEFAULT_NOW).unwrap();
        claims["jti"] = json!(format!("{serial:032X}"));
        fixtures.mint(key, &claims).unwrap()
    };
    // The instruction counts, from metered VMs of the same filter.
    {
        let metered = FilterModule::load_metered(&wasm, config.clone(), HashMap::new()).unwrap();
        let (mut vm, mut vm_wasm) = vms(&metered, &config);
        let cached = mint("rsa-a");
        decide(&mut vm, &cached);
        let public = instructions(&mut vm, &mut String::new, 100);
        let hit = instructions(&mut vm, &mut || cached.clone(), 100);
        let rs256_host = instructions(&mut vm, &mut || mint("rsa-a"), 20);
        let es256_host = instructions(&mut vm, &mut || mint("ec-a"), 20);
        let rs256 = instructions(&mut vm_wasm, &mut || mint("rsa-a"), 5);
        let es256 = instructions(&mut vm_wasm, &mut || mint("ec-a"), 5);
        let eddsa = instructions(&mut vm_wasm, &mut || mint("ed-a"), 5);
        let fixtures = Fixtures::load_default().unwrap();
        let mut dpop_counts = Vec::new();
        for (vm, key) in [(&mut vm, "ec-a"), (&mut vm_wasm, "ed-a")] {
            let mut bound = Bound::new(&fixtures, key);
            let first = bound.proof(&fixtures);
            decide_dpop(vm, &bound.token, &first);
            let mut total = 0;
            for _ in 0..20 {
                let proof = bound.proof(&fixtures);
                let before = vm.instructions().unwrap();
                decide_dpop(vm, &bound.token, &proof);
                total += vm.instructions().unwrap() - before;
            }
            dpop_counts.push(total / 20);
        }
        println!("wasm instructions per request (wasmtime fuel):");
        println!("  public route, no credential              {public:>12}");
        println!("  cache hit                                {hit:>12}");
        println!("  first-seen RS256 with verify_signature   {rs256_host:>12}");
        println!("  first-seen ES256 with verify_signature   {es256_host:>12}");
        println!("  first-seen RS256 in wasm                 {rs256:>12}");
        println!("  first-seen ES256 in wasm                 {es256:>12}");
        println!("  first-seen EdDSA in wasm                 {eddsa:>12}");
        println!(
            "  cache hit + ES256 DPoP proof, verify_signature {:>6}",
            dpop_counts[0]
        );
        println!(
            "  cache hit + EdDSA DPoP proof in wasm     {:>12}",
            dpop_counts[1]
        );
    }
    let mut group = c.benchmark_group("gateway");
    group.sample_size(30);
    let cached = mint("rsa-a");
    decide(&mut vm, &cached);
    group.bench_function("public_route_no_credential", |b| {
        b.iter(|| decide(&mut vm, black_box("")))
    });
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
    group.bench_function("first_seen_es256_verify_signature", |b| {
        b.iter_batched(
            || mint("ec-a"),
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
    // DPoP on a first-seen token: a new bound token (RS256, through
    // verify_signature) and its ES256 proof (verify_signature) each time.
    let fixtures = Fixtures::load_default().unwrap();
    group.bench_function("first_seen_rs256_dpop_es256_verify_signature", |b| {
        b.iter_batched(
            || {
                let mut bound = Bound::new(&fixtures, "ec-a");
                let proof = bound.proof(&fixtures);
                (bound.token, proof)
            },
            |(token, proof)| decide_dpop(&mut vm, &token, &proof),
            BatchSize::SmallInput,
        )
    });
    // DPoP on a cache hit: the token's verdict is cached, each request
    // brings a fresh proof (ES256 through verify_signature, EdDSA in wasm).
    for (name, key, wasm_only) in [
        ("cache_hit_dpop_es256_verify_signature", "ec-a", false),
        ("cache_hit_dpop_eddsa_wasm", "ed-a", true),
    ] {
        let target = if wasm_only { &mut vm_wasm } else { &mut vm };
        let mut bound = Bound::new(&fixtures, key);
        let first = bound.proof(&fixtures);
        let token = bound.token.clone();
        decide_dpop(target, &token, &first);
        group.bench_function(name, |b| {
            b.iter_batched(
                || bound.proof(&fixtures),
                |p| decide_dpop(target, &token, &p),
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
    // The ES256 peer: BoringSSL verifying the token's signature natively, as
    // Envoy's jwt_authn does (split, base64url-decode, ECDSA P-256 check).
    let es_token = mint("ec-a");
    let es_jwk = Fixtures::load_default()
        .unwrap()
        .key("ec-a")
        .unwrap()
        .public_jwk()
        .unwrap();
    let es_key =
        boring::pkey::PKey::public_key_from_der(&foreign::spki_der(&es_jwk).unwrap()).unwrap();
    let boring_es256 = |token: &str| {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = erpgate::decode_b64url(sig).unwrap();
        let der = foreign::ecdsa_der(&sig).unwrap();
        let mut verifier =
            boring::sign::Verifier::new(boring::hash::MessageDigest::sha256(), &es_key).unwrap();
        verifier.verify_oneshot(&der, input.as_bytes()).unwrap()
    };
    assert!(boring_es256(&es_token));
    group.bench_function("native_boringssl_es256_verify", |b| {
        b.iter(|| boring_es256(black_box(&es_token)))
    });
    group.finish();
}

criterion_group!(gateway, benches);
criterion_main!(gateway);

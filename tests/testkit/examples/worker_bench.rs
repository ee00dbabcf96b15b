//! The worker module in real workerd next to `jose` verifying the same tokens:
//! first-seen RS256, ES256 and EdDSA decisions, and a repeat-token decision.
//! With `dpop`: DPoP-bound tokens with fresh ES256 proofs, on a cache hit
//! and first-seen, next to `jose` checking the same proofs.
//!
//! `scripts/build-worker && cargo run --release -p erpgate-testkit --example worker_bench [-- dpop]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use erpgate_testkit::js::{http, start_workerd};
use erpgate_testkit::{
    DEFAULT_NOW, Fixtures, VECTOR_ORIGIN, dpop_proof, preset_claims, repo_root, test_policy,
};
use serde_json::{Value, json};

const N: usize = 300;
/// Requests of each kind before measuring.
const WARM_UP: usize = 15;

fn write_config() -> String {
    let root = repo_root();
    let jose_dir = root.join("tests/worker/node_modules/jose/dist/webapi");
    let mut modules = vec![
        r#"(name = "benches/worker/bench-worker.js", esModule = embed "bench-worker.js")"#.to_owned(),
        r#"(name = "benches/worker/erpgate_bg.wasm", wasm = embed "../../src/adapters/js/pkg/erpgate_bg.wasm")"#.to_owned(),
        r#"(name = "src/adapters/js/index.js", esModule = embed "../../src/adapters/js/index.js")"#.to_owned(),
        r#"(name = "src/adapters/js/pkg/erpgate.js", esModule = embed "../../src/adapters/js/pkg/erpgate.js")"#.to_owned(),
    ];
    let mut stack = vec![jose_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "js") {
                let rel = path.strip_prefix(&root).unwrap().display().to_string();
                modules.push(format!(
                    r#"(name = "{rel}", esModule = embed "../../{rel}")"#
                ));
            }
        }
    }
    let text = format!(
        "using Workerd = import \"/workerd/workerd.capnp\";\nconst config :Workerd.Config = (\n  services = [(name = \"bench\", worker = .bench)],\n  sockets = [(name = \"http\", address = \"127.0.0.1:8788\", http = (), service = \"bench\")],\n);\nconst bench :Workerd.Worker = (\n  modules = [\n    {}\n  ],\n  compatibilityDate = \"2025-06-01\",\n);\n",
        modules.join(",\n    ")
    );
    std::fs::write(root.join("benches/worker/generated.capnp"), text).unwrap();
    "benches/worker/generated.capnp".into()
}

fn timed(addr: &str, body: &Value) -> Duration {
    let bytes = body.to_string().into_bytes();
    let start = Instant::now();
    let (status, reply) = http(
        addr,
        "POST",
        "/",
        &[("content-type", "application/json")],
        &bytes,
    )
    .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let ok = serde_json::from_slice::<Value>(&reply).unwrap()["ok"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(
        ok,
        body["tokens"].as_array().unwrap().len(),
        "every decision must allow"
    );
    elapsed
}

/// The time per decision of the median of `samples` (seconds per `N`).
fn per_decision(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2] * 1e6 / N as f64
}

/// `work`'s time less that of `parse` (the same job only read), measured
/// just before it.
fn diff(addr: &str, parse: &Value, work: &Value) -> f64 {
    let base = timed(addr, parse);
    timed(addr, work).as_secs_f64() - base.as_secs_f64()
}

/// DPoP in workerd: tokens (RS256, `rsa-a`) bound to `ec-a`, each request
/// with a fresh ES256 proof of that key. On a cache hit the token is the
/// same each time; first-seen, every token is new. `jose` checks the same
/// proofs (`jose-proof`), or the token and its proof (`jose-dpop`).
fn dpop_rows(addr: &str, fixtures: &Fixtures, policy: &str, rounds: usize) {
    let path = "/api/domain/odata/Crm_Customers";
    let htu = format!("{VECTOR_ORIGIN}{path}");
    let client_jwk = fixtures.key("ec-a").unwrap().public_jwk().unwrap();
    let jkt = erpgate::dpop::thumbprint(client_jwk.as_object().unwrap()).unwrap();
    let jwk = fixtures.key("rsa-a").unwrap().public_jwk().unwrap();
    let mut serial = 0usize;
    let mut token = |bound: bool| {
        serial += 1;
        let mut claims = preset_claims(fixtures, "service", DEFAULT_NOW).unwrap();
        claims["jti"] = json!(format!("{serial:032X}"));
        if bound {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        fixtures.mint("rsa-a", &claims).unwrap()
    };
    let mut proofs = 0usize;
    let mut proof = |token: &str| {
        proofs += 1;
        let claims = json!({
            "jti": format!("bench-{proofs}"),
            "htm": "GET",
            "htu": htu,
            "iat": DEFAULT_NOW,
            "ath": erpgate::dpop::token_hash(token),
        });
        dpop_proof(fixtures, "ec-a", &claims, &json!({})).unwrap()
    };
    let job = |mode: &str, tokens: Value| {
        json!({"mode": mode, "alg": "RS256", "policy": policy, "jwk": jwk, "jkt": jkt,
               "issuer": "https://demo.my.erp.net/id", "origin": VECTOR_ORIGIN,
               "nowMs": DEFAULT_NOW * 1000, "tokens": tokens})
    };
    let bound = token(true);
    let unbound = token(false);
    // The bound token's verdict cached, and everything warmed up.
    let mut pairs = |tokens: Vec<String>| -> Value {
        tokens
            .into_iter()
            .map(|t| {
                let p = proof(&t);
                json!([t, p])
            })
            .collect()
    };
    for _ in 0..WARM_UP {
        let hit = pairs(vec![bound.clone(); N]);
        timed(addr, &job("erpgate-dpop", hit.clone()));
        timed(addr, &job("jose-proof", pairs(vec![bound.clone(); N])));
        timed(addr, &job("erpgate", json!(vec![unbound.clone(); N])));
        let fresh: Vec<String> = (0..N).map(|_| token(true)).collect();
        timed(addr, &job("erpgate-dpop", pairs(fresh.clone())));
        timed(addr, &job("jose-dpop", pairs(fresh)));
    }
    let (mut hit, mut bearer_hit, mut jose_proof) = (vec![], vec![], vec![]);
    let (mut first, mut bearer_first, mut jose_first) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let on_hit = pairs(vec![bound.clone(); N]);
        timed(addr, &job("parse-dpop", on_hit.clone()));
        hit.push(diff(
            addr,
            &job("parse-dpop", on_hit.clone()),
            &job("erpgate-dpop", on_hit),
        ));
        let again = pairs(vec![bound.clone(); N]);
        jose_proof.push(diff(
            addr,
            &job("parse-dpop", again.clone()),
            &job("jose-proof", again),
        ));
        let same = json!(vec![unbound.clone(); N]);
        bearer_hit.push(diff(
            addr,
            &job("parse", same.clone()),
            &job("erpgate", same),
        ));
        let fresh = pairs((0..N).map(|_| token(true)).collect());
        first.push(diff(
            addr,
            &job("parse-dpop", fresh.clone()),
            &job("erpgate-dpop", fresh),
        ));
        let fresh = pairs((0..N).map(|_| token(true)).collect());
        jose_first.push(diff(
            addr,
            &job("parse-dpop", fresh.clone()),
            &job("jose-dpop", fresh),
        ));
        let plain = json!((0..N).map(|_| token(false)).collect::<Vec<_>>());
        bearer_first.push(diff(
            addr,
            &job("parse", plain.clone()),
            &job("erpgate", plain),
        ));
    }
    let (hit, bearer_hit, jose_proof) = (
        per_decision(hit),
        per_decision(bearer_hit),
        per_decision(jose_proof),
    );
    let (first, bearer_first, jose_first) = (
        per_decision(first),
        per_decision(bearer_first),
        per_decision(jose_first),
    );
    println!(
        "| DPoP in workerd ({N} per request, median of {rounds}) | erpgate | jose (WebCrypto) | erpgate / jose | DPoP's added cost in erpgate |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| cache hit + fresh ES256 proof | {hit:.1} µs | {jose_proof:.1} µs (the proof alone) | {:.2}× | +{:.1} µs over a bearer hit ({bearer_hit:.1} µs) |",
        hit / jose_proof,
        hit - bearer_hit
    );
    println!(
        "| first-seen bound RS256 token + ES256 proof | {first:.1} µs | {jose_first:.1} µs (token and proof) | {:.2}× | +{:.1} µs over a first-seen bearer token ({bearer_first:.1} µs) |",
        first / jose_first,
        first - bearer_first
    );
}

fn main() {
    // Rounds per figure (median); `BENCH_ROUNDS` overrides.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let fixtures = Fixtures::load_default().unwrap();
    let policy = test_policy(&fixtures).unwrap();
    let workerd = start_workerd(&write_config()).unwrap();
    let addr = workerd.addr.clone();
    if std::env::args().any(|a| a == "dpop") {
        dpop_rows(&addr, &fixtures, &policy, rounds);
        return;
    }
    let mut serial = 0usize;
    let mut mint = |key: &str| {
        serial += 1;
        let mut claims = preset_claims(&fixtures, "service", DEFAULT_NOW).unwrap();
        claims["jti"] = json!(format!("{serial:032X}"));
        fixtures.mint(key, &claims).unwrap()
    };
    println!(
        "| decision in workerd ({N} per request, median of {rounds}) | erpgate | jose (WebCrypto) | erpgate / jose |"
    );
    println!("|---|---|---|---|");
    const ALGS: [(&str, &str); 3] = [("RS256", "rsa-a"), ("ES256", "ec-a"), ("EdDSA", "ed-a")];
    let jobs: Vec<_> = ALGS
        .iter()
        .map(|&(alg, key)| {
            let jwk = fixtures.key(key).unwrap().public_jwk().unwrap();
            (alg, key, jwk)
        })
        .collect();
    let job = |alg: &str, jwk: &Value, mode: &str, tokens: Vec<String>| json!({"mode": mode, "alg": alg, "policy": policy, "jwk": jwk, "issuer": "https://demo.my.erp.net/id", "nowMs": DEFAULT_NOW * 1000, "tokens": tokens});
    // Warm up both sides, every algorithm, before measuring any: V8 tiers
    // wasm up from Liftoff after enough calls (so does jose's JS), and the
    // module is shared by all three. Measured first, RS256 used to carry
    // what was left of that (its repeat-token figure, the same work as the
    // others', read twice theirs).
    for _ in 0..WARM_UP {
        for (alg, key, jwk) in &jobs {
            let tokens: Vec<String> = (0..N).map(|_| mint(key)).collect();
            timed(&addr, &job(alg, jwk, "erpgate", tokens.clone()));
            timed(&addr, &job(alg, jwk, "jose", tokens.clone()));
            timed(&addr, &job(alg, jwk, "erpgate", vec![tokens[0].clone(); N]));
        }
    }
    // Each measurement is paired with what reading the same job costs,
    // measured just before it; the figure is the median of the pairs'
    // differences (robust to a slow request from the collector). Rounds go
    // through the algorithms in turn, so the machine's drift falls on all.
    let diff = |parse: &Value, work: &Value| diff(&addr, parse, work);
    let mut samples = vec![(vec![], vec![], vec![]); jobs.len()];
    for _ in 0..rounds {
        for ((alg, key, jwk), (first, jose, repeat)) in jobs.iter().zip(samples.iter_mut()) {
            let tokens: Vec<String> = (0..N).map(|_| mint(key)).collect();
            let parse = job(alg, jwk, "parse", tokens.clone());
            // One unmeasured request first: whatever the previous job left
            // (garbage to collect) is paid here, not by the baseline.
            timed(&addr, &parse);
            first.push(diff(&parse, &job(alg, jwk, "erpgate", tokens.clone())));
            jose.push(diff(&parse, &job(alg, jwk, "jose", tokens)));
            let token = mint(key);
            timed(&addr, &job(alg, jwk, "erpgate", vec![token.clone()]));
            let same = vec![token; N];
            repeat.push(diff(
                &job(alg, jwk, "parse", same.clone()),
                &job(alg, jwk, "erpgate", same),
            ));
        }
    }
    let per = per_decision;
    for ((alg, _, _), (first, jose, repeat)) in jobs.iter().zip(samples) {
        let (e, j, r) = (per(first), per(jose), per(repeat));
        println!(
            "| first-seen {alg} | {e:.1} µs | {j:.1} µs | {:.2}× |",
            e / j
        );
        println!(
            "| repeat token (cache hit), {alg} | {r:.1} µs | {j:.1} µs (first-seen; jose has no cache) | {:.3}× |",
            r / j
        );
    }
}

//! How a cache hit's cost grows with the JWT cache: the native decision
//! time of a hit with 1 k, 100 k and 1 M distinct tokens cached, and the
//! heap bytes each cached token holds (a counting allocator: everything the
//! cache keeps for an entry, identity headers included).
//!
//! `cargo bench -p erpgate --bench cache_growth`
//!
//! Tokens are HS256 (minting a million RSA tokens would take the run), of
//! the same size and claims as the corpus's service tokens; each hit picks
//! a token at random among those cached, so the cache is read the way many
//! clients read it, not one hot entry.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    // The counting allocator below.
    unsafe_code
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use erpgate::{Decision, Engine, Policy, Request, Step, Time};
use erpgate_testkit::{DEFAULT_NOW, Fixtures, preset_claims, test_policy};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Bytes allocated and not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call is passed to the system allocator unchanged; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SECRET: &[u8] = b"cache-growth-bench-secret-0123456789";
const PATH: &str = "/api/domain/odata/Crm_Customers";

fn token(claims: &Value, n: usize) -> String {
    let mut claims = claims.clone();
    claims["jti"] = json!(format!("{n:032X}"));
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"at+jwt","kid":"HS-G"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Decides one request; returns the length of the identity headers' values
/// (the text the entry-size goal adds to its 300 bytes).
fn decide(engine: &Engine, state: &mut erpgate::State, bearer: &str, now: Time) -> usize {
    let headers = [("authorization", bearer.as_bytes())];
    match engine.start(&Request::new("GET", PATH, &headers), now, state) {
        Step::Decided(Decision::Allow(allow)) => {
            allow.headers_to_set().map(|(_, value)| value.len()).sum()
        }
        other => panic!("not allowed: {other:?}"),
    }
}

/// A tiny xorshift: the same "random" picks every run.
fn picks(n: usize, count: usize) -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        })
        .collect()
}

fn main() {
    let fixtures = Fixtures::load_default().unwrap();
    let mut policy: Value = serde_json::from_str(&test_policy(&fixtures).unwrap()).unwrap();
    let issuer = policy["issuers"][0]["issuer"].clone();
    policy["issuers"] = json!([{
        "issuer": issuer, "audiences": ["DomainAPI"], "algorithms": ["HS256"],
        "shared_secret": {"base64url": URL_SAFE_NO_PAD.encode(SECRET), "kid": "HS-G"},
    }]);
    let claims = preset_claims(&fixtures, "service", DEFAULT_NOW).unwrap();
    let now = Time::from_secs(DEFAULT_NOW);
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // once as a smoke test, with a small cache only.
    let (sizes, hits): (&[usize], usize) = if std::env::args().any(|a| a == "--bench") {
        (&[1_000, 100_000, 1_000_000], 100_000)
    } else {
        (&[1_000], 1_000)
    };
    println!(
        "| tokens cached | cache hit (median of 5 passes over {hits} random hits) | heap per cached token | identity headers' text | token length |"
    );
    println!("|---|---|---|---|---|");
    // What a state allocates whatever its cache holds (a one-entry cache):
    // left out of the per-entry figure, so the 1 k row is not the state's
    // fixed part spread over few entries.
    policy["jwt_cache"] = json!({"max_entries": 1, "max_ttl_s": 3600});
    let fixed = {
        let engine = Engine::new(Policy::compile(&policy.to_string()).unwrap());
        let before = LIVE.load(Ordering::Relaxed);
        let state = engine.new_state([7; 16]);
        let fixed = LIVE.load(Ordering::Relaxed) - before;
        drop(state);
        fixed
    };
    for &n in sizes {
        // A cache sized to hold them all; what its table allocates up front
        // counts towards the entries.
        policy["jwt_cache"] = json!({"max_entries": n, "max_ttl_s": 3600});
        let engine = Engine::new(Policy::compile(&policy.to_string()).unwrap());
        let before = LIVE.load(Ordering::Relaxed);
        let mut state = engine.new_state([7; 16]);
        for i in 0..n {
            decide(
                &engine,
                &mut state,
                &format!("Bearer {}", token(&claims, i)),
                now,
            );
        }
        let per_entry = (LIVE.load(Ordering::Relaxed) - before - fixed) as f64 / n as f64;
        let text = decide(
            &engine,
            &mut state,
            &format!("Bearer {}", token(&claims, 0)),
            now,
        );
        let sample: Vec<String> = picks(n, hits)
            .into_iter()
            .map(|i| format!("Bearer {}", token(&claims, i)))
            .collect();
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                let start = Instant::now();
                for bearer in &sample {
                    decide(&engine, &mut state, black_box(bearer), now);
                }
                start.elapsed().as_secs_f64() * 1e9 / sample.len() as f64
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        println!(
            "| {n} | {:.0} ns | {per_entry:.0} B | {text} B | {} B |",
            runs[2],
            token(&claims, 0).len()
        );
    }
}

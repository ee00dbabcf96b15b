#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Native cost of one decision: a cache hit, and first-seen tokens per
//! algorithm, next to jwt-simple (BoringSSL) verifying the same tokens.
//!
//! `cargo bench -p erpgate --bench engine`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use erpgate::keys::Backend;
use erpgate::{Decision, Engine, KeySet, Policy, Request, Step, Time};
use erpgate_testkit::{DEFAULT_NOW, Fixtures, preset_claims, test_policy};
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike, NoCustomClaims,
    RS256PublicKey, RSAPublicKeyLike, VerificationOptions,
};
use serde_json::Value;

const PATH: &str = "/api/domain/odata/Crm_Customers";

struct Setup {
    engine: Engine,
    fixtures: Fixtures,
    now: Time,
}

fn setup() -> Setup {
    let fixtures = Fixtures::load_default().unwrap();
    let policy = Policy::compile(&test_policy(&fixtures).unwrap()).unwrap();
    Setup {
        engine: Engine::new(policy),
        fixtures,
        now: Time::from_secs(DEFAULT_NOW),
    }
}

fn token(s: &Setup, key: &str, n: usize) -> String {
    let mut claims = preset_claims(&s.fixtures, "service", DEFAULT_NOW).unwrap();
    claims["jti"] = Value::String(format!("{n:032X}"));
    s.fixtures.mint(key, &claims).unwrap()
}

fn decide(engine: &Engine, state: &mut erpgate::State, bearer: &str, now: Time) -> u16 {
    let headers = [("authorization", bearer.as_bytes())];
    match engine.start(&Request::new("GET", PATH, &headers), now, state) {
        Step::Decided(d @ Decision::Allow(_)) => d.status(),
        other => panic!("not allowed: {other:?}"),
    }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("decision");
    {
        let bearer = format!("Bearer {}", token(&s, "rsa-a", 0));
        let mut state = s.engine.new_state([7; 16]);
        decide(&s.engine, &mut state, &bearer, s.now);
        group.bench_function("cache_hit", |b| {
            b.iter(|| decide(&s.engine, &mut state, black_box(&bearer), s.now))
        });
    }
    for (name, key) in [
        ("first_seen_rs256", "rsa-a"),
        ("first_seen_es256", "ec-a"),
        ("first_seen_eddsa", "ed-a"),
    ] {
        let bearer = format!("Bearer {}", token(&s, key, 1));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || s.engine.new_state([7; 16]),
                |state| decide(&s.engine, state, black_box(&bearer), s.now),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // The raw verification primitive, per backend, and the peer on the same token.
    let mut group = c.benchmark_group("verify");
    let jwks = s
        .fixtures
        .jwks(&["rsa-a", "ec-a", "ed-a"])
        .unwrap()
        .to_string();
    let set = KeySet::from_jwks(jwks.as_bytes(), &erpgate::Algorithm::ALL).unwrap();
    for (name, key, kid) in [
        ("rs256", "rsa-a", "5B27920E653DD7AC67D2F64B32A17992"),
        ("es256", "ec-a", "EC-A"),
        ("eddsa", "ed-a", "ED-A"),
    ] {
        let t = token(&s, key, 2);
        let (input, sig) = t.rsplit_once('.').unwrap();
        let sig = erpgate::decode_b64url(sig).unwrap();
        let k = set.select(Some(kid)).unwrap();
        assert!(k.verify_with(Backend::Native, input.as_bytes(), &sig));
        group.bench_function(format!("{name}_erpgate_native"), |b| {
            b.iter(|| k.verify_with(Backend::Native, black_box(input.as_bytes()), &sig))
        });
        if name == "rs256" {
            group.bench_function(format!("{name}_erpgate_portable"), |b| {
                b.iter(|| k.verify_with(Backend::Portable, black_box(input.as_bytes()), &sig))
            });
        }
        let jwk = s
            .fixtures
            .key(key)
            .unwrap()
            .public_jwk()
            .unwrap()
            .to_string();
        let opts = || {
            Some(VerificationOptions {
                artificial_time: Some(jwt_simple::prelude::UnixTimeStamp::from_secs(DEFAULT_NOW)),
                allowed_audiences: None,
                ..Default::default()
            })
        };
        match name {
            "rs256" => {
                let pk = RS256PublicKey::from_jwk(&jwk).unwrap();
                pk.verify_token::<NoCustomClaims>(&t, opts()).unwrap();
                group.bench_function("rs256_peer_jwt_simple", |b| {
                    b.iter(|| pk.verify_token::<NoCustomClaims>(black_box(&t), opts()))
                });
            }
            "es256" => {
                let pk = ES256PublicKey::from_jwk(&jwk).unwrap();
                pk.verify_token::<NoCustomClaims>(&t, opts()).unwrap();
                group.bench_function("es256_peer_jwt_simple", |b| {
                    b.iter(|| pk.verify_token::<NoCustomClaims>(black_box(&t), opts()))
                });
            }
            _ => {
                let pk = Ed25519PublicKey::from_jwk(&jwk).unwrap();
                pk.verify_token::<NoCustomClaims>(&t, opts()).unwrap();
                group.bench_function("eddsa_peer_jwt_simple", |b| {
                    b.iter(|| pk.verify_token::<NoCustomClaims>(black_box(&t), opts()))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);

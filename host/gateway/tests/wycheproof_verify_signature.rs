//! Wycheproof's RSASSA-PKCS1-v1_5 and ECDSA P-256 vectors through the path
//! the Envoy filter takes when the host offers `verify_signature`: the key as the filter
//! sends it (SubjectPublicKeyInfo DER from the JWK), the filter's protobuf
//! encoding, the gateway's native `verify_signature` (BoringSSL), the
//! filter's decoding. Every verdict must match Wycheproof and the portable
//! path inside wasm.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use erpgate::adapters::foreign;
use erpgate::keys::Backend;
use erpgate::{Algorithm, KeySet, encode_b64url};
use erpgate_gateway::abi::verify_signature;
use serde_json::json;
use wycheproof::TestResult;
use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};

/// Vectors run, and every one whose two verdicts are wrong: they differ,
/// or differ from what Wycheproof says (an `Acceptable` vector may go
/// either way, as long as both paths agree).
#[derive(Default)]
struct Tally {
    run: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, name: &str, tc_id: usize, result: TestResult, host: bool, portable: bool) {
        self.run += 1;
        let expected = match result {
            TestResult::Valid => Some(true),
            TestResult::Invalid => Some(false),
            TestResult::Acceptable => None,
        };
        if host != portable || expected.is_some_and(|e| e != host) {
            self.failures.push(format!(
                "{name} #{tc_id}: Wycheproof {result:?}, verify_signature {host}, portable {portable}"
            ));
        }
    }

    fn finish(self, what: &str, at_least: usize) {
        eprintln!(
            "{} {what} vectors through verify_signature, {} failures",
            self.run,
            self.failures.len()
        );
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
        assert!(self.run >= at_least);
    }
}

#[test]
fn rsa_pkcs1_through_verify_signature() {
    let mut tally = Tally::default();
    for (name, alg) in [
        (TestName::Rsa2048Sha256, Algorithm::RS256),
        (TestName::Rsa2048Sha384, Algorithm::RS384),
        (TestName::Rsa2048Sha512, Algorithm::RS512),
        (TestName::Rsa3072Sha256, Algorithm::RS256),
        (TestName::Rsa3072Sha384, Algorithm::RS384),
        (TestName::Rsa3072Sha512, Algorithm::RS512),
        (TestName::Rsa4096Sha256, Algorithm::RS256),
        (TestName::Rsa4096Sha384, Algorithm::RS384),
        (TestName::Rsa4096Sha512, Algorithm::RS512),
    ] {
        for group in TestSet::load(name).unwrap().test_groups {
            let jwk = json!({"kty": "RSA", "n": encode_b64url(&group.key.n), "e": encode_b64url(&group.key.e), "alg": alg.name()});
            let set =
                KeySet::from_jwks(json!({ "keys": [jwk] }).to_string().as_bytes(), &[alg]).unwrap();
            let key = set.keys().first().unwrap().clone();
            let der = foreign::rsa_spki_der(key.public_jwk().unwrap()).unwrap();
            for t in &group.tests {
                let args = foreign::encode_request(alg, &der, &t.sig, &t.msg).unwrap();
                let host = verify_signature(&args)
                    .and_then(|r| foreign::decode_result(&r))
                    .unwrap_or(false);
                let portable = key.verify_with(Backend::Portable, &t.msg, &t.sig);
                tally.check(&format!("{name:?}"), t.tc_id, t.result, host, portable);
            }
        }
    }
    tally.finish("RSA", 500);
}

/// Wycheproof's ECDSA P-256 / SHA-256 vectors in JOSE's form (r‖s, IEEE
/// P1363) through the filter's path to `verify_signature`: the key as the
/// SubjectPublicKeyInfo DER the filter makes from the JWK, the signature
/// re-encoded as DER, the gateway's native (BoringSSL) check. Every verdict
/// must match Wycheproof and the portable path inside wasm (p256).
#[test]
fn ecdsa_p256_p1363_through_verify_signature() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::EcdsaSecp256r1Sha256P1363,
        TestName::EcdsaSecp256r1Webcrypto,
    ] {
        for group in TestSet::load(name).unwrap().test_groups {
            if format!("{:?}", group.hash) != "Sha2_256" {
                continue; // the webcrypto file mixes hashes; ES256 is SHA-256 only
            }
            let jwk = json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256",
                "x": encode_b64url(&erpgate_testkit::fixed_width(&group.key.affine_x, 32)),
                "y": encode_b64url(&erpgate_testkit::fixed_width(&group.key.affine_y, 32)),
            });
            let Ok(set) = KeySet::from_jwks(
                json!({ "keys": [jwk] }).to_string().as_bytes(),
                &[Algorithm::ES256],
            ) else {
                continue; // a key the core refuses never reaches either path
            };
            let Some(key) = set.keys().first().cloned() else {
                continue;
            };
            let der = foreign::spki_der(key.public_jwk().unwrap()).unwrap();
            for t in &group.tests {
                // As the filter does: a signature that is not r||s is
                // refused before the host is asked.
                let host = t.sig.len() == 64
                    && foreign::encode_request(Algorithm::ES256, &der, &t.sig, &t.msg)
                        .and_then(|args| verify_signature(&args))
                        .and_then(|r| foreign::decode_result(&r))
                        .unwrap_or(false);
                let portable = key.verify_with(Backend::Portable, &t.msg, &t.sig);
                tally.check(&format!("{name:?}"), t.tc_id, t.result, host, portable);
            }
        }
    }
    tally.finish("ECDSA", 300);
}

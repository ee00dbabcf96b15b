//! RFC 9728 through what `erpgate up` runs: a client that knows nothing but
//! an API URL follows the 401's `resource_metadata` to the protected-resource
//! metadata, checks it as the RFC says a client must, follows
//! `authorization_servers` to the server's own metadata, gets a token for a
//! scope the resource lists, and calls the API with it.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;

mod net;

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The auth-params of a `WWW-Authenticate` challenge (RFC 9110 §11.2):
/// the scheme, then `name=token` or `name="quoted string"` pairs.
fn challenge_params(header: &str) -> (String, Vec<(String, String)>) {
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        params.push((name.trim().to_ascii_lowercase(), value));
        rest = after;
    }
    (scheme.to_owned(), params)
}

/// RFC 9728 §2's members with the types they must have, and §3.3's rule:
/// `resource` is the identifier the metadata URL was made from.
fn check_metadata(doc: &Value, resource: &str) {
    let object = doc.as_object().expect("the metadata is a JSON object");
    assert_eq!(object["resource"], resource, "RFC 9728 §3.3: {doc}");
    let strings = |name: &str| -> Vec<String> {
        object.get(name).map_or_else(Vec::new, |v| {
            v.as_array()
                .unwrap_or_else(|| panic!("`{name}` is an array: {doc}"))
                .iter()
                .map(|s| s.as_str().expect("of strings").to_owned())
                .collect()
        })
    };
    assert!(!strings("authorization_servers").is_empty(), "{doc}");
    assert!(!strings("scopes_supported").is_empty(), "{doc}");
    for method in strings("bearer_methods_supported") {
        assert!(
            ["header", "body", "query"].contains(&method.as_str()),
            "{doc}"
        );
    }
    for name in ["resource_name", "resource_documentation"] {
        assert!(object.get(name).is_none_or(Value::is_string), "{doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_discovers_the_authorization_server_from_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let stack = net::up_stack(dir.path(), None).await;
    let origin = format!("http://{}", stack.gateway.addr);
    let api = format!("{origin}/api/domain/odata/Crm_Customers");
    let http = reqwest::Client::new();

    // The 401 names the metadata.
    let denied = http.get(&api).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let header = denied.headers()["www-authenticate"].to_str().unwrap();
    let (scheme, params) = challenge_params(header);
    assert_eq!(scheme, "Bearer", "{header}");
    let metadata_url = net::param(&params, "resource_metadata")
        .unwrap_or_else(|| panic!("no resource_metadata in {header}"))
        .to_owned();
    assert_eq!(metadata_url, format!("{origin}{WELL_KNOWN}"));

    // The metadata, checked as RFC 9728 §3.3 asks of a client.
    let answer = http.get(&metadata_url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public, max-age=")
    );
    let doc: Value = answer.json().await.unwrap();
    let resource = metadata_url.replacen(WELL_KNOWN, "", 1);
    check_metadata(&doc, &resource);
    let issuer = &stack.host.state.identity.issuer;
    assert_eq!(doc["authorization_servers"], serde_json::json!([issuer]));
    let head = http.head(&metadata_url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());

    // The authorization server, from its own metadata (RFC 8414 §3.3: its
    // `issuer` is the identifier the client started from).
    let server: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&server["issuer"], issuer);
    assert_eq!(server["token_endpoint"], format!("{issuer}/connect/token"));

    // A token for a scope the resource lists, and the API answers.
    let scopes = doc["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&"read".into()), "{doc}");
    let access = net::service_token(&stack.host.state.identity.public_url, "read").await;
    let allowed = http.get(&api).bearer_auth(&access).send().await.unwrap();
    assert_eq!(allowed.status(), 200);

    // A refused token's challenge names the metadata too.
    let refused = http.get(&api).bearer_auth("a.b.c").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let header = refused.headers()["www-authenticate"].to_str().unwrap();
    let (_, params) = challenge_params(header);
    assert_eq!(net::param(&params, "error"), Some("invalid_token"));
    assert_eq!(
        net::param(&params, "resource_metadata"),
        Some(metadata_url.as_str())
    );
    stack.stop().await;
}

#[test]
fn the_challenge_parser_reads_quoted_strings_and_tokens() {
    let (scheme, params) =
        challenge_params(r#"Bearer realm="a \"b\", c", error=invalid_token, scope="x y""#);
    assert_eq!(scheme, "Bearer");
    let want = [
        ("realm", r#"a "b", c"#),
        ("error", "invalid_token"),
        ("scope", "x y"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(params, want);
}

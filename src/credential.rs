//! Finds the one credential in a request (RFC 6750 §2.1 plus ERP.net's API-key
//! headers) and classifies it. Query strings and cookies are never read.

use crate::request::Request;

/// The headers that may carry a reference token, besides `Authorization`.
/// Header names are case-insensitive, so `X-API-KEY` is `X-Api-Key`.
pub const API_KEY_HEADERS: [&str; 2] = ["x-api-key", "api-key"];

/// Query parameters that would carry a token in the URL, which ERP.net forbids.
const URL_TOKEN_PARAMS: [&str; 4] = ["access_token", "api_key", "apikey", "api-key"];

/// Where the credential was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization` header.
    Authorization,
    /// One of the API-key headers.
    ApiKeyHeader,
}

/// A classified credential, borrowed from the request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A compact JWS (three base64url segments).
    Jwt(&'a str),
    /// An ERP.net reference token: `enrt_` + 64 uppercase hex characters.
    Reference(&'a str, Source),
    /// `Authorization: DPoP <token>`: a sender-constrained token (a JWT or
    /// a reference token), valid only with a proof of its key (RFC 9449 §7.1).
    Dpop(&'a str),
    /// Legacy `Authorization: Basic …`; the value is the base64 part.
    Basic(&'a str),
    /// Legacy `Authorization: ErpSession <id>`.
    ErpSession(&'a str),
}

impl std::fmt::Debug for Credential<'_> {
    // Never print the credential itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Jwt(_) => "Credential::Jwt(<redacted>)",
            Credential::Reference(..) => "Credential::Reference(<redacted>)",
            Credential::Dpop(_) => "Credential::Dpop(<redacted>)",
            Credential::Basic(_) => "Credential::Basic(<redacted>)",
            Credential::ErpSession(_) => "Credential::ErpSession(<redacted>)",
        })
    }
}

/// Why credential extraction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// More than one credential header (or a repeated one) in one request.
    #[error("more than one credential in the request")]
    MultipleCredentials,
    /// A header value is not visible ASCII.
    #[error("credential header is not visible ASCII")]
    InvalidEncoding,
    /// `Authorization` without a scheme and a value, or a value outside `token68`.
    #[error("malformed Authorization header")]
    MalformedAuthorization,
    /// An `Authorization` scheme other than Bearer, DPoP, Basic or ErpSession.
    #[error("unsupported authorization scheme")]
    UnsupportedScheme,
    /// A token in the query string.
    #[error("access tokens are not accepted in the URL")]
    TokenInUrl,
    /// The Bearer value is neither a JWT nor a reference token.
    #[error("the bearer token is neither a JWT nor a reference token")]
    MalformedToken,
    /// `enrt_` with the wrong length or lowercase hex, or an API key that is not
    /// a reference token.
    #[error("malformed reference token")]
    MalformedReferenceToken,
}

// A token is hundreds of bytes and is read on every request: each check
// below is one pass without an early exit or a branch per byte, so that the
// compiler turns it into vector code where the target has it.

/// Every byte is visible ASCII or a tab.
fn all_visible(bytes: &[u8]) -> bool {
    let mut bad = 0u8;
    for &b in bytes {
        bad |= u8::from(!((b.wrapping_sub(0x20) < 0x5f) | (b == b'\t')));
    }
    bad == 0
}

/// Every byte is a base64url character.
fn all_b64url(bytes: &[u8]) -> bool {
    let mut bad = 0u8;
    for &b in bytes {
        let alpha = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        bad |= u8::from(!(alpha | digit | (b == b'-') | (b == b'_')));
    }
    bad == 0
}

fn visible_ascii(value: &[u8]) -> Result<&str, CredentialError> {
    if all_visible(value) {
        std::str::from_utf8(value)
            .map(|s| s.trim_matches([' ', '\t']))
            .map_err(|_| CredentialError::InvalidEncoding)
    } else {
        Err(CredentialError::InvalidEncoding)
    }
}

/// RFC 6750 `b64token`: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
fn is_b64token(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Whether `value` is `enrt_` followed by exactly 64 uppercase hex characters.
pub fn is_reference_token(value: &str) -> bool {
    value.strip_prefix("enrt_").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    })
}

/// Three non-empty base64url segments joined by dots (an empty signature
/// segment is `alg: none`; it is refused here). Implies [`is_b64token`].
fn is_jwt_shape(value: &str) -> bool {
    let mut parts = value.split('.');
    let mut count = 0;
    let well_formed = parts.by_ref().take(3).all(|part| {
        count += 1;
        !part.is_empty() && all_b64url(part.as_bytes())
    });
    well_formed && count == 3 && parts.next().is_none()
}

fn classify_bearer(token: &str, source: Source) -> Result<Credential<'_>, CredentialError> {
    if token.starts_with("enrt_") || source == Source::ApiKeyHeader {
        if is_reference_token(token) {
            Ok(Credential::Reference(token, source))
        } else {
            Err(CredentialError::MalformedReferenceToken)
        }
    } else if is_jwt_shape(token) {
        Ok(Credential::Jwt(token))
    } else {
        Err(CredentialError::MalformedToken)
    }
}

fn parse_authorization(value: &str) -> Result<Credential<'_>, CredentialError> {
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or(CredentialError::MalformedAuthorization)?;
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(CredentialError::MalformedAuthorization);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        // The common case in one pass: a JWT's shape is a b64token.
        if !token.starts_with("enrt_") && is_jwt_shape(token) {
            return Ok(Credential::Jwt(token));
        }
        if !is_b64token(token) {
            return Err(CredentialError::MalformedAuthorization);
        }
        classify_bearer(token, Source::Authorization)
    } else if scheme.eq_ignore_ascii_case("dpop") {
        if !is_b64token(token) {
            return Err(CredentialError::MalformedAuthorization);
        }
        match classify_bearer(token, Source::Authorization)? {
            Credential::Jwt(token) | Credential::Reference(token, _) => Ok(Credential::Dpop(token)),
            _ => Err(CredentialError::MalformedToken),
        }
    } else if scheme.eq_ignore_ascii_case("basic") {
        if !is_b64token(token) {
            return Err(CredentialError::MalformedAuthorization);
        }
        Ok(Credential::Basic(token))
    } else if scheme.eq_ignore_ascii_case("erpsession") {
        if token.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(CredentialError::MalformedAuthorization);
        }
        Ok(Credential::ErpSession(token))
    } else {
        Err(CredentialError::UnsupportedScheme)
    }
}

/// Whether the query string carries a token parameter.
pub fn query_carries_token(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(name, _)| {
        URL_TOKEN_PARAMS
            .iter()
            .any(|p| name.eq_ignore_ascii_case(p))
    })
}

/// The token of a request whose one credential is `Authorization: Bearer
/// <token>` with nothing around the token, as raw bytes and unparsed: what
/// the JWT cache is looked up by before the credential is parsed. A hit
/// means these very bytes were parsed and verified before (the cache is
/// keyed by a 128-bit keyed hash of them); anything else, a miss included,
/// goes through [`extract`], which decides exactly as it always does.
pub fn cached_bearer<'a>(request: &Request<'a>) -> Option<&'a [u8]> {
    if request.query().is_some_and(query_carries_token) {
        return None;
    }
    let mut found: Option<&'a [u8]> = None;
    for (name, value) in request.headers {
        if name.eq_ignore_ascii_case("authorization") {
            if found.is_some() {
                return None;
            }
            found = Some(value);
        } else if API_KEY_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return None;
        }
    }
    let value = found?;
    let (scheme, token) = (value.get(..7)?, value.get(7..)?);
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.starts_with(b"enrt_")).then_some(token)
}

/// Finds the request's credential. `Ok(None)` means the request carries none.
pub fn extract<'a>(request: &Request<'a>) -> Result<Option<Credential<'a>>, CredentialError> {
    if request.query().is_some_and(query_carries_token) {
        return Err(CredentialError::TokenInUrl);
    }
    let mut found: Option<(&'a [u8], Source)> = None;
    for (name, value) in request.headers {
        let source = if name.eq_ignore_ascii_case("authorization") {
            Source::Authorization
        } else if API_KEY_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            Source::ApiKeyHeader
        } else {
            continue;
        };
        if found.is_some() {
            return Err(CredentialError::MultipleCredentials);
        }
        found = Some((value, source));
    }
    let Some((raw, source)) = found else {
        return Ok(None);
    };
    let value = visible_ascii(raw)?;
    match source {
        Source::Authorization => parse_authorization(value).map(Some),
        Source::ApiKeyHeader => {
            if value.is_empty() {
                return Err(CredentialError::MalformedReferenceToken);
            }
            classify_bearer(value, Source::ApiKeyHeader).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REF: &str = "enrt_1D41D4694B4F02D3D6A31FFA07E20B73F48248B26C75A0CCCB5F9DBEE41F7960";

    fn run(
        headers: &[(&str, &str)],
        path: &str,
    ) -> Result<Option<Credential<'static>>, CredentialError> {
        let owned: Vec<(&'static str, &'static [u8])> = headers
            .iter()
            .map(|(n, v)| {
                (
                    &*Box::leak(n.to_string().into_boxed_str()),
                    &*Box::leak(v.as_bytes().to_vec().into_boxed_slice()),
                )
            })
            .collect();
        let headers: &'static [(&'static str, &'static [u8])] = Box::leak(owned.into_boxed_slice());
        let path: &'static str = Box::leak(path.to_string().into_boxed_str());
        extract(&Request::new("GET", path, headers))
    }

    #[test]
    fn classifies_each_kind() {
        assert!(matches!(
            run(&[("Authorization", "Bearer a.b.c")], "/"),
            Ok(Some(Credential::Jwt("a.b.c")))
        ));
        assert!(matches!(
            run(&[("authorization", &format!("bearer {REF}"))], "/"),
            Ok(Some(Credential::Reference(_, Source::Authorization)))
        ));
        for h in ["X-Api-Key", "Api-Key", "X-API-KEY", "x-api-key"] {
            assert!(
                matches!(
                    run(&[(h, REF)], "/"),
                    Ok(Some(Credential::Reference(_, Source::ApiKeyHeader)))
                ),
                "{h}"
            );
        }
        assert!(matches!(
            run(&[("Authorization", "Basic QWRtaW46MTIz")], "/"),
            Ok(Some(Credential::Basic(_)))
        ));
        assert!(matches!(
            run(&[("Authorization", "ErpSession abc123")], "/"),
            Ok(Some(Credential::ErpSession("abc123")))
        ));
        assert!(matches!(run(&[("Accept", "x")], "/"), Ok(None)));
    }

    #[test]
    fn two_credentials_are_invalid() {
        assert_eq!(
            run(
                &[("Authorization", "Bearer a.b.c"), ("X-Api-Key", REF)],
                "/"
            ),
            Err(CredentialError::MultipleCredentials)
        );
        assert_eq!(
            run(
                &[
                    ("Authorization", "Bearer a.b.c"),
                    ("authorization", "Bearer a.b.c")
                ],
                "/"
            ),
            Err(CredentialError::MultipleCredentials)
        );
        assert_eq!(
            run(&[("X-Api-Key", REF), ("Api-Key", REF)], "/"),
            Err(CredentialError::MultipleCredentials)
        );
    }

    #[test]
    fn cached_bearer_takes_only_a_lone_plain_bearer_token() {
        let get = |headers: &[(&str, &str)], path: &str| {
            let h: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            cached_bearer(&Request::new("GET", path, &h)).map(<[u8]>::to_vec)
        };
        let bearer_ref = format!("Bearer {REF}");
        assert_eq!(
            get(&[("Authorization", "bearer a.b.c")], "/"),
            Some(b"a.b.c".to_vec())
        );
        assert_eq!(
            get(&[("authorization", "Bearer  a.b.c")], "/"),
            Some(b" a.b.c".to_vec())
        );
        for (headers, path) in [
            (
                &[
                    ("Authorization", "Bearer a.b.c"),
                    ("Authorization", "Bearer a.b.c"),
                ][..],
                "/",
            ),
            (
                &[("Authorization", "Bearer a.b.c"), ("X-Api-Key", "k")][..],
                "/",
            ),
            (&[("Authorization", "Bearer a.b.c")][..], "/?access_token=x"),
            (&[("Authorization", bearer_ref.as_str())][..], "/"),
            (&[("Authorization", "Basic a.b.c")][..], "/"),
            (&[("Authorization", "Bearer")][..], "/"),
            (&[][..], "/"),
        ] {
            assert_eq!(get(headers, path), None, "{headers:?} {path}");
        }
    }

    #[test]
    fn malformed_values() {
        assert_eq!(
            run(&[("Authorization", "Bearer")], "/"),
            Err(CredentialError::MalformedAuthorization)
        );
        assert_eq!(
            run(&[("Authorization", "Bearer a b")], "/"),
            Err(CredentialError::MalformedAuthorization)
        );
        assert_eq!(
            run(&[("Authorization", "Bearer a.b.c\u{1}")], "/"),
            Err(CredentialError::InvalidEncoding)
        );
        assert_eq!(
            run(&[("Authorization", "Digest x")], "/"),
            Err(CredentialError::UnsupportedScheme)
        );
        assert_eq!(
            run(&[("Authorization", "Bearer a.b.")], "/"),
            Err(CredentialError::MalformedToken)
        );
        assert_eq!(
            run(&[("Authorization", "Bearer a.b")], "/"),
            Err(CredentialError::MalformedToken)
        );
        assert_eq!(
            run(
                &[("X-Api-Key", &REF.to_lowercase().replace("ENRT", "enrt"))],
                "/"
            ),
            Err(CredentialError::MalformedReferenceToken)
        );
        assert_eq!(
            run(&[("X-Api-Key", &REF[..60])], "/"),
            Err(CredentialError::MalformedReferenceToken)
        );
        assert_eq!(
            run(&[("X-Api-Key", "a.b.c")], "/"),
            Err(CredentialError::MalformedReferenceToken)
        );
        // The one-pass JWT shape check: every segment, every byte.
        for token in [
            ".b.c", "a..c", "a.b.c.d", "a.b.c.", "a.b+.c", "a.b.c=", "a.b/.c",
        ] {
            assert_eq!(
                run(&[("Authorization", &format!("Bearer {token}"))], "/"),
                Err(CredentialError::MalformedToken),
                "{token}"
            );
        }
        assert_eq!(
            run(&[("Authorization", "Bearer a.b\t.c")], "/"),
            Err(CredentialError::MalformedAuthorization)
        );
        assert_eq!(
            run(&[("Authorization", "ErpSession a\tb")], "/"),
            Err(CredentialError::MalformedAuthorization)
        );
        assert!(matches!(
            run(&[("Authorization", "Bearer a-_.0Z.9z")], "/"),
            Ok(Some(Credential::Jwt("a-_.0Z.9z")))
        ));
    }

    #[test]
    fn tokens_in_url_are_refused() {
        assert_eq!(
            run(&[], "/api?access_token=x"),
            Err(CredentialError::TokenInUrl)
        );
        assert_eq!(
            run(&[], "/api?a=1&API_KEY=x"),
            Err(CredentialError::TokenInUrl)
        );
        assert!(matches!(run(&[], "/api?$top=1"), Ok(None)));
    }
}

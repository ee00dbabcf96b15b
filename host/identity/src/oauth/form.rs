//! Strict `application/x-www-form-urlencoded` bodies for the OAuth endpoints:
//! bounded size, the right content type, no repeated parameter (RFC 6749 §3.2).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Request, header};

use super::error::OAuthError;

/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Parsed form parameters. Empty values count as absent (RFC 6749 §3.1).
#[derive(Debug, Default)]
pub struct Form(pub BTreeMap<String, String>);

impl Form {
    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Parses a form body.
    pub fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        if std::str::from_utf8(bytes).is_err() {
            return Err(OAuthError::invalid_request("the form body is not UTF-8"));
        }
        let mut map = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if map.contains_key(name.as_ref()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{name}` is repeated"
                )));
            }
            if !value.is_empty() {
                map.insert(name.into_owned(), value.into_owned());
            } else {
                // Still remember the name, so `a=&a=x` counts as a repeat.
                map.insert(name.into_owned(), String::new());
            }
        }
        map.retain(|_, v| !v.is_empty());
        Ok(Form(map))
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = OAuthError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "content type must be application/x-www-form-urlencoded",
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| OAuthError::too_large())?;
        Self::parse(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_empty_parameters() {
        assert!(Form::parse(b"a=1&a=2").is_err());
        assert!(Form::parse(b"a=&a=2").is_err());
        let f = Form::parse(b"a=&b=x%20y").unwrap();
        assert_eq!(f.get("a"), None);
        assert_eq!(f.get("b"), Some("x y"));
        assert!(
            Form::parse(b"a=%FF").is_ok(),
            "percent-decoding is lossy but not an error"
        );
        assert!(Form::parse(b"\xff=1").is_err());
    }
}

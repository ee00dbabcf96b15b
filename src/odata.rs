//! OData-aware scope checks. One OData request can reach entity sets its
//! path does not start with: through navigation (`Persons(1)/User`), through
//! `$expand`, through member paths in `$filter`, `$orderby` and `$select`
//! (`$filter=User/Name eq 'x'` is an oracle on the user), and through every
//! inner request of a `$batch` body, which the edge otherwise never sees.
//! This module lists the entity sets a request reaches; the engine then
//! requires, for each one, what the policy's route for
//! `{service_root}{entity set}` requires.
//!
//! The edge does not hold the service's model, so the policy names the
//! navigation properties whose targets matter (`navigation`); a segment it
//! does not name is taken as a property of the entity set it follows.

use std::borrow::Cow;
use std::collections::HashMap;

/// Inner requests one `$batch` may carry.
pub const MAX_BATCH_REQUESTS: usize = 1000;

/// The compiled `odata` section of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ODataPolicy {
    /// Where the service starts, e.g. `/api/domain/odata/` (case-folded
    /// when the policy's paths are case-insensitive).
    pub service_root: String,
    /// Navigation property → the entity set it leads to; keys case-folded
    /// when the policy's paths are case-insensitive.
    pub navigation: HashMap<String, String>,
    /// The largest `$batch` body inspected; a larger one is refused.
    pub max_batch_bytes: usize,
    /// Whether names compare case-insensitively.
    pub fold: bool,
}

/// One entity-set access a request makes, borrowed from the request and
/// the policy where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach<'a> {
    /// `GET` for reads (navigation on the way, `$expand`, filters); the
    /// request's (or inner request's) method for what it acts on.
    pub method: Cow<'a, str>,
    /// The entity set, as named.
    pub entity_set: Cow<'a, str>,
}

impl Reach<'_> {
    fn into_owned(self) -> Reach<'static> {
        Reach {
            method: Cow::Owned(self.method.into_owned()),
            entity_set: Cow::Owned(self.entity_set.into_owned()),
        }
    }
}

/// Why an OData request could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ODataError {
    /// A `$batch` body that is neither JSON batch nor `multipart/mixed`, or
    /// that does not parse.
    #[error("the $batch body could not be read")]
    MalformedBatch,
    /// A `$batch` inside a `$batch`.
    #[error("a $batch may not contain a $batch")]
    NestedBatch,
    /// An inner request outside this service.
    #[error("a $batch request names a URL outside the service")]
    OutsideService,
    /// More inner requests than [`MAX_BATCH_REQUESTS`].
    #[error("the $batch holds too many requests")]
    TooManyRequests,
    /// Over `max_batch_bytes`.
    #[error("the $batch body is too large to inspect")]
    TooLarge,
    /// The adapter did not hand over the body it was asked for.
    #[error("the $batch body was not inspected")]
    BodyNotInspected,
    /// A percent-encoding that does not decode.
    #[error("the OData request is not validly encoded")]
    BadEncoding,
}

impl ODataError {
    /// A stable snake_case code for logs, metrics and test vectors.
    pub fn code(self) -> &'static str {
        match self {
            ODataError::MalformedBatch => "malformed_batch",
            ODataError::NestedBatch => "nested_batch",
            ODataError::OutsideService => "batch_outside_service",
            ODataError::TooManyRequests => "batch_too_many_requests",
            ODataError::TooLarge => "batch_too_large",
            ODataError::BodyNotInspected => "body_not_inspected",
            ODataError::BadEncoding => "invalid_odata_encoding",
        }
    }
}

impl ODataPolicy {
    /// Whether `head` names the service root (case-insensitively when the
    /// policy folds), without copying it.
    fn is_root(&self, head: &str) -> bool {
        if self.fold {
            head.eq_ignore_ascii_case(&self.service_root)
        } else {
            head == self.service_root
        }
    }

    /// The resource path after the service root, if the normalized `path`
    /// is inside it.
    pub fn resource<'a>(&self, path: &'a str) -> Option<&'a str> {
        let root_len = self.service_root.len();
        path.get(..root_len)
            .filter(|head| self.is_root(head))
            .and_then(|_| path.get(root_len..))
    }

    /// Whether this request is a `$batch` whose body must be inspected.
    pub fn is_batch(&self, method: &str, resource: &str) -> bool {
        method == "POST" && resource.eq_ignore_ascii_case("$batch")
    }

    /// The entity sets a request for `resource` (after the service root,
    /// percent-encoded as sent) with `query` reaches.
    pub fn reaches<'a>(
        &'a self,
        method: &'a str,
        resource: &'a str,
        query: Option<&'a str>,
    ) -> Result<Vec<Reach<'a>>, ODataError> {
        let decoded = percent_decode(resource, false).ok_or(ODataError::BadEncoding)?;
        let mut out = Vec::new();
        let mut names = pieces(&decoded, b'/').map(segment_name).peekable();
        if let Some(first) = names
            .next()
            .filter(|n| !n.is_empty() && !n.starts_with('$'))
        {
            // Borrowed from the request unless decoding made a copy.
            let entity_set = match &decoded {
                Cow::Borrowed(_) => {
                    Cow::Borrowed(segment_name(pieces(resource, b'/').next().unwrap_or("")))
                }
                Cow::Owned(_) => Cow::Owned(first.to_owned()),
            };
            out.push(Reach {
                method: Cow::Borrowed(method),
                entity_set,
            });
        }
        while let Some(name) = names.next() {
            if let Some(target) = self.target(name) {
                let m = if names.peek().is_none() {
                    method
                } else {
                    "GET"
                };
                out.push(Reach {
                    method: Cow::Borrowed(m),
                    entity_set: Cow::Borrowed(target),
                });
            }
        }
        if let Some(query) = query {
            for (name, value) in query_pairs(query)? {
                self.query_option(&name, &value, &mut out, 0);
            }
        }
        Ok(out)
    }

    /// The entity set a navigation property leads to, if the policy names it.
    fn target(&self, name: &str) -> Option<&str> {
        let found = if self.fold && name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.navigation.get(&name.to_ascii_lowercase())
        } else {
            self.navigation.get(name)
        };
        found.map(String::as_str)
    }

    fn read<'a>(&'a self, name: &str, out: &mut Vec<Reach<'a>>) {
        if let Some(target) = self.target(name) {
            out.push(Reach {
                method: Cow::Borrowed("GET"),
                entity_set: Cow::Borrowed(target),
            });
        }
    }

    /// One system query option (`$expand`, `$filter`, …), nested ones too.
    fn query_option<'a>(&'a self, name: &str, value: &str, out: &mut Vec<Reach<'a>>, depth: usize) {
        if depth > 8 {
            // Deeper nesting than any real client sends: every name read.
            for path in member_paths(value) {
                for segment in &path {
                    self.read(segment, out);
                }
            }
            return;
        }
        match name.to_ascii_lowercase().as_str() {
            "$expand" => {
                for item in split_top(value, b',') {
                    let (path, options) = match item.find('(') {
                        Some(i) => (&item[..i], item.get(i + 1..item.len().saturating_sub(1))),
                        None => (item, None),
                    };
                    for segment in split_top(path, b'/') {
                        self.read(segment_name(segment.trim()), out);
                    }
                    for option in options.map(|o| split_top(o, b';')).unwrap_or_default() {
                        if let Some((n, v)) = option.split_once('=') {
                            self.query_option(n.trim(), v, out, depth + 1);
                        }
                    }
                }
            }
            "$filter" | "$orderby" | "$select" | "$apply" | "$compute" | "$search" => {
                for path in member_paths(value) {
                    // The last member is a property; every one before it
                    // is traversed.
                    for segment in path.iter().take(path.len().saturating_sub(1)) {
                        self.read(segment, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// The entity sets the inner requests of a `$batch` body reach.
    pub fn batch_reaches(
        &self,
        content_type: &[u8],
        body: &[u8],
    ) -> Result<Vec<Reach<'static>>, ODataError> {
        if body.len() > self.max_batch_bytes {
            return Err(ODataError::TooLarge);
        }
        let content_type = std::str::from_utf8(content_type)
            .map_err(|_| ODataError::MalformedBatch)?
            .to_ascii_lowercase();
        let inner = if media_type(&content_type) == "application/json" {
            json_batch(body)?
        } else if media_type(&content_type) == "multipart/mixed" {
            let boundary = boundary(&content_type).ok_or(ODataError::MalformedBatch)?;
            let mut inner = Vec::new();
            multipart_batch(body, &boundary, 0, &mut inner)?;
            inner
        } else {
            return Err(ODataError::MalformedBatch);
        };
        if inner.len() > MAX_BATCH_REQUESTS {
            return Err(ODataError::TooManyRequests);
        }
        let mut out = Vec::new();
        for (method, url) in inner {
            let (resource, query) = self.inner_target(&url)?;
            if resource
                .trim_start_matches('/')
                .eq_ignore_ascii_case("$batch")
            {
                return Err(ODataError::NestedBatch);
            }
            let method = method.to_ascii_uppercase();
            let reaches = self.reaches(&method, resource, query)?;
            out.extend(reaches.into_iter().map(Reach::into_owned));
        }
        Ok(out)
    }

    /// An inner request's URL as (resource after the service root, query):
    /// relative to the root, an absolute path inside it, or a full URL whose
    /// path is inside it.
    fn inner_target<'a>(&self, url: &'a str) -> Result<(&'a str, Option<&'a str>), ODataError> {
        let path = match url.find("://") {
            Some(i) => {
                let after = url.get(i + 3..).unwrap_or("");
                after.find('/').and_then(|j| after.get(j..)).unwrap_or("/")
            }
            None => url,
        };
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        if path.starts_with('/') {
            let decoded = percent_decode(path, false).ok_or(ODataError::BadEncoding)?;
            if decoded.contains("/../") || decoded.contains("/./") || decoded.ends_with("/..") {
                return Err(ODataError::OutsideService);
            }
            let root_len = self.service_root.len();
            let head = path.get(..root_len).ok_or(ODataError::OutsideService)?;
            if !self.is_root(head) {
                return Err(ODataError::OutsideService);
            }
            return Ok((path.get(root_len..).unwrap_or(""), query));
        }
        if path.contains("..") {
            return Err(ODataError::OutsideService);
        }
        Ok((path, query))
    }
}

/// `type/subtype` of a content type, lowercase input.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The `boundary` parameter of a lowercase content type (quotes removed).
/// Boundaries are case-sensitive, so the caller re-reads the original.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        (name.trim() == "boundary").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// `{"requests":[{"method":…,"url":…},…]}` (OData JSON batch).
fn json_batch(body: &[u8]) -> Result<Vec<(String, String)>, ODataError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| ODataError::MalformedBatch)?;
    let requests = value
        .get("requests")
        .and_then(serde_json::Value::as_array)
        .ok_or(ODataError::MalformedBatch)?;
    if requests.len() > MAX_BATCH_REQUESTS {
        return Err(ODataError::TooManyRequests);
    }
    requests
        .iter()
        .map(|r| {
            let method = r.get("method").and_then(serde_json::Value::as_str);
            let url = r.get("url").and_then(serde_json::Value::as_str);
            match (method, url) {
                (Some(m), Some(u)) => Ok((m.to_owned(), u.to_owned())),
                _ => Err(ODataError::MalformedBatch),
            }
        })
        .collect()
}

/// The lines of `text`, split on LF with a trailing CR removed.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// A multipart/mixed batch: each part an `application/http` request or a
/// changeset (a nested multipart/mixed, one level deep).
fn multipart_batch(
    body: &[u8],
    boundary: &str,
    depth: usize,
    out: &mut Vec<(String, String)>,
) -> Result<(), ODataError> {
    if boundary.is_empty() || depth > 1 {
        return Err(ODataError::MalformedBatch);
    }
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts: Vec<Vec<&[u8]>> = Vec::new();
    let mut current: Option<Vec<&[u8]>> = None;
    let mut closed = false;
    for line in lines(body) {
        let trimmed = trim_ascii_end(line);
        if trimmed == close.as_bytes() {
            parts.extend(current.take());
            closed = true;
            break;
        }
        if trimmed == delimiter.as_bytes() {
            parts.extend(current.take());
            current = Some(Vec::new());
            continue;
        }
        if let Some(part) = current.as_mut() {
            part.push(line);
        }
    }
    if !closed || parts.is_empty() {
        return Err(ODataError::MalformedBatch);
    }
    for part in parts {
        if out.len() > MAX_BATCH_REQUESTS {
            return Err(ODataError::TooManyRequests);
        }
        let blank = part
            .iter()
            .position(|l| l.is_empty())
            .ok_or(ODataError::MalformedBatch)?;
        let (headers, content) = part.split_at(blank);
        let content = content.get(1..).unwrap_or(&[]);
        let content_type = headers
            .iter()
            .filter_map(|h| std::str::from_utf8(h).ok())
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            })
            .ok_or(ODataError::MalformedBatch)?;
        let lower = content_type.to_ascii_lowercase();
        match media_type(&lower) {
            "application/http" => {
                let request_line = content
                    .iter()
                    .find(|l| !l.is_empty())
                    .and_then(|l| std::str::from_utf8(l).ok())
                    .ok_or(ODataError::MalformedBatch)?;
                let mut words = request_line.split_ascii_whitespace();
                let (Some(method), Some(url)) = (words.next(), words.next()) else {
                    return Err(ODataError::MalformedBatch);
                };
                out.push((method.to_owned(), url.to_owned()));
            }
            "multipart/mixed" => {
                // The boundary's case matters: read it from the original.
                let inner = content_type
                    .split(';')
                    .skip(1)
                    .find_map(|p| {
                        let (name, value) = p.split_once('=')?;
                        name.trim()
                            .eq_ignore_ascii_case("boundary")
                            .then(|| value.trim().trim_matches('"').to_owned())
                    })
                    .ok_or(ODataError::MalformedBatch)?;
                let joined = content.join(&b"\n"[..]);
                multipart_batch(&joined, &inner, depth + 1, out)?;
            }
            _ => return Err(ODataError::MalformedBatch),
        }
    }
    Ok(())
}

fn trim_ascii_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    line.get(..end).unwrap_or(line)
}

/// A path segment's name: before a key `(…)`.
fn segment_name(segment: &str) -> &str {
    segment.split('(').next().unwrap_or("").trim()
}

/// Where `sep` occurs outside parentheses and single-quoted literals.
fn top_level(text: &str, sep: u8) -> impl Iterator<Item = usize> + '_ {
    let (mut depth, mut quoted) = (0usize, false);
    text.bytes().enumerate().filter_map(move |(i, b)| {
        match b {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth = depth.saturating_sub(1),
            _ if b == sep && !quoted && depth == 0 => return Some(i),
            _ => {}
        }
        None
    })
}

/// The pieces of `text` between top-level `sep`s (outside parentheses and
/// single-quoted literals), lazily.
fn pieces(text: &str, sep: u8) -> impl Iterator<Item = &str> + '_ {
    let mut start = 0;
    top_level(text, sep)
        .map(Some)
        .chain(std::iter::once(None))
        .map(move |end| {
            let end = end.unwrap_or(text.len());
            let piece = text.get(start..end).unwrap_or("");
            start = end + 1;
            piece
        })
}

/// Splits on `sep` outside parentheses and single-quoted literals.
fn split_top(text: &str, sep: u8) -> Vec<&str> {
    pieces(text, sep).collect()
}

/// Member paths in an expression (`User/Name`, `x/User/Id`): identifiers
/// joined by `/`, outside string literals.
fn member_paths(expression: &str) -> Vec<Vec<&str>> {
    let bytes = expression.as_bytes();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'\'' {
            // Skip the literal; '' is an escaped quote.
            i += 1;
            while i < bytes.len() {
                if bytes.get(i) == Some(&b'\'') {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len()
                && bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'.'))
            {
                i += 1;
            }
            let path = expression.get(start..i).unwrap_or("");
            paths.push(path.split('/').filter(|s| !s.is_empty()).collect());
            continue;
        }
        i += 1;
    }
    paths
}

/// The query's parameters, percent-decoded (`+` as a space), duplicates kept.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ODataError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (percent_decode(name, true), percent_decode(value, true)) {
                (Some(n), Some(v)) => Ok((n.into_owned(), v.into_owned())),
                _ => Err(ODataError::BadEncoding),
            }
        })
        .collect()
}

/// Percent-decodes `text` (`+` as a space when `plus`); `None` for a `%`
/// without two hex digits or bytes that are not UTF-8. Text with nothing to
/// decode is returned as it is.
fn percent_decode(text: &str, plus: bool) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| b == b'%' || (plus && b == b'+')) {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ODataPolicy {
        ODataPolicy {
            service_root: "/api/domain/odata/".into(),
            navigation: [
                ("user", "Systems_Security_Users"),
                ("roles", "Systems_Security_Roles"),
                ("customer", "Crm_Customers"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            max_batch_bytes: 4096,
            fold: true,
        }
    }

    fn sets(reaches: &[Reach]) -> Vec<(String, String)> {
        reaches
            .iter()
            .map(|r| (r.method.to_string(), r.entity_set.to_string()))
            .collect()
    }

    fn pair(m: &str, s: &str) -> (String, String) {
        (m.to_owned(), s.to_owned())
    }

    #[test]
    fn navigation_expand_and_member_paths_reach_their_targets() {
        let p = policy();
        let r = p
            .reaches("GET", "General_Contacts_Persons(guid'1')/User", None)
            .unwrap();
        assert_eq!(
            sets(&r),
            [
                pair("GET", "General_Contacts_Persons"),
                pair("GET", "Systems_Security_Users")
            ]
        );
        let r = p
            .reaches("PATCH", "Crm_Customers(1)/Customer/User", None)
            .unwrap();
        assert_eq!(
            sets(&r),
            [
                pair("PATCH", "Crm_Customers"),
                pair("GET", "Crm_Customers"),
                pair("PATCH", "Systems_Security_Users")
            ]
        );
        let r = p
            .reaches(
                "GET",
                "Crm_Customers",
                Some("%24expand=Customer(%24expand%3DUser%3B%24select%3DName),Roles&$filter=x/User/Name%20eq%20'User/Roles'"),
            )
            .unwrap();
        assert_eq!(
            sets(&r),
            [
                pair("GET", "Crm_Customers"),
                pair("GET", "Crm_Customers"),
                pair("GET", "Systems_Security_Users"),
                pair("GET", "Systems_Security_Roles"),
                pair("GET", "Systems_Security_Users"),
            ],
            "a string literal names nothing"
        );
        // Unmapped segments are properties of what they follow.
        let r = p
            .reaches("GET", "Crm_Customers(1)/Name/$value", None)
            .unwrap();
        assert_eq!(sets(&r), [pair("GET", "Crm_Customers")]);
        assert_eq!(
            p.reaches("GET", "Crm_%ZZ", None),
            Err(ODataError::BadEncoding)
        );
    }

    #[test]
    fn json_and_multipart_batches_are_read_request_by_request() {
        let p = policy();
        let json = br#"{"requests":[{"id":"1","method":"get","url":"Systems_Security_Users"},{"id":"2","method":"PATCH","url":"/api/domain/odata/Crm_Customers(1)?$expand=User","body":{}}]}"#;
        let r = p.batch_reaches(b"application/json", json).unwrap();
        assert_eq!(
            sets(&r),
            [
                pair("GET", "Systems_Security_Users"),
                pair("PATCH", "Crm_Customers"),
                pair("GET", "Systems_Security_Users")
            ]
        );
        let multipart = "--b1\r\nContent-Type: application/http\r\n\r\nGET Crm_Customers HTTP/1.1\r\n\r\n--b1\r\nContent-Type: multipart/mixed; boundary=Cs\r\n\r\n--Cs\r\nContent-Type: application/http\r\n\r\nDELETE http://host/api/domain/odata/Systems_Security_Users(5) HTTP/1.1\r\n\r\n--Cs--\r\n--b1--\r\n";
        let r = p
            .batch_reaches(b"multipart/mixed; boundary=b1", multipart.as_bytes())
            .unwrap();
        assert_eq!(
            sets(&r),
            [
                pair("GET", "Crm_Customers"),
                pair("DELETE", "Systems_Security_Users")
            ]
        );
    }

    #[test]
    fn batches_that_cannot_be_read_are_refused() {
        let p = policy();
        let refused = |ct: &str, body: &str| p.batch_reaches(ct.as_bytes(), body.as_bytes());
        assert_eq!(refused("text/plain", "x"), Err(ODataError::MalformedBatch));
        assert_eq!(
            refused("application/json", r#"{"requests":[{"url":"x"}]}"#),
            Err(ODataError::MalformedBatch)
        );
        assert_eq!(
            refused(
                "application/json",
                r#"{"requests":[{"method":"POST","url":"$batch"}]}"#
            ),
            Err(ODataError::NestedBatch)
        );
        assert_eq!(
            refused(
                "application/json",
                r#"{"requests":[{"method":"GET","url":"/admin/x"}]}"#
            ),
            Err(ODataError::OutsideService)
        );
        assert_eq!(
            refused(
                "application/json",
                r#"{"requests":[{"method":"GET","url":"/api/domain/odata/../../admin"}]}"#
            ),
            Err(ODataError::OutsideService)
        );
        assert_eq!(
            refused(
                "multipart/mixed; boundary=b",
                "--b\r\nContent-Type: application/http\r\n\r\nGET X HTTP/1.1\r\n"
            ),
            Err(ODataError::MalformedBatch),
            "never closed"
        );
        assert_eq!(
            refused("multipart/mixed", "--b--"),
            Err(ODataError::MalformedBatch)
        );
        assert_eq!(
            refused("application/json", &" ".repeat(5000)),
            Err(ODataError::TooLarge)
        );
    }
}

//! A borrowed view of one HTTP request, as every adapter can build it, and
//! the check that its path is unambiguous.

/// The parts of a request the engine decides on. Header names compare
/// case-insensitively; values are raw bytes because a proxy may hand us anything.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `GET` (Envoy's `:method`).
    pub method: &'a str,
    /// The request target: path plus optional query (Envoy's `:path`).
    pub path: &'a str,
    /// Every request header, in order, duplicates included.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body, when the engine asked for it ([`Engine::body_limit`]):
    /// an OData `$batch` is decided on its inner requests.
    ///
    /// [`Engine::body_limit`]: crate::Engine::body_limit
    pub body: Option<&'a [u8]>,
    /// The scheme and authority the client addressed, as the adapter knows
    /// them (Envoy's `:scheme` and `:authority`, a worker's URL); without
    /// them, `:scheme` and `:authority` (or `host`) among the headers. A
    /// DPoP proof's `htu` must name them.
    pub target: Option<(&'a str, &'a str)>,
}

impl<'a> Request<'a> {
    /// Builds a request view.
    pub fn new(method: &'a str, path: &'a str, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        Self {
            method,
            path,
            headers,
            body: None,
            target: None,
        }
    }

    /// The same request, addressed at `scheme://authority`.
    pub fn with_target(self, scheme: &'a str, authority: &'a str) -> Self {
        Self {
            target: Some((scheme, authority)),
            ..self
        }
    }

    /// The URI the client addressed, without the query: what a DPoP proof's
    /// `htu` names. `None` when neither the adapter nor the headers say
    /// where the request went.
    pub fn uri(&self) -> Option<String> {
        let path = self.path_only();
        if let Some((scheme, authority)) = self.target {
            return Some(format!("{scheme}://{authority}{path}"));
        }
        let one = |name: &'a str| {
            let mut values = self.header_values(name);
            let first = values.next()?;
            values
                .next()
                .is_none()
                .then(|| std::str::from_utf8(first).ok())?
        };
        let scheme = one(":scheme").unwrap_or("https");
        let authority = one(":authority").or_else(|| one("host"))?;
        Some(format!("{scheme}://{authority}{path}"))
    }

    /// The same request with its body.
    pub fn with_body(self, body: &'a [u8]) -> Self {
        Self {
            body: Some(body),
            ..self
        }
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &'a str {
        self.path.split_once('?').map_or(self.path, |(p, _)| p)
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.path.split_once('?').map(|(_, q)| q)
    }
}

/// The path as the upstream will read it, or `None` when it cannot be placed
/// (RFC 3986 §6.2.2): percent-encoded unreserved characters (`ALPHA`,
/// `DIGIT`, `-`, `.`, `_`, `~`) are decoded, as Kestrel, IIS and every
/// common server decode them, so `Systems%5FSecurity_Users` meets the
/// route `Systems_Security_Users` does. Refused: a `%` not followed by two
/// hex digits, an encoded `%` (decoded twice, it is anything), path
/// parameters (`;`, plain or encoded: `/..;/` on Java servers). Other
/// encoded characters stay encoded: they cannot spell a route's literal
/// part. Allocates only when the path has a `%`.
pub fn normalized_path(path: &str) -> Option<std::borrow::Cow<'_, str>> {
    if path.contains(';') {
        return None;
    }
    if !path.contains('%') {
        return Some(std::borrow::Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hex = |at: usize| bytes.get(at).and_then(|h| char::from(*h).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
            return None;
        };
        let decoded = u8::try_from(hi * 16 + lo).ok()?;
        match decoded {
            b'%' | b';' => return None,
            d if d.is_ascii_alphanumeric() || matches!(d, b'-' | b'.' | b'_' | b'~') => out.push(d),
            _ => out.extend_from_slice(bytes.get(i..i + 3)?),
        }
        i += 3;
    }
    // ASCII triplets became ASCII bytes; the rest is the input's own UTF-8.
    String::from_utf8(out).ok().map(std::borrow::Cow::Owned)
}

/// Whether a path is unambiguous: absolute, no dot-segments (plain or
/// percent-encoded), no encoded slash or backslash, no empty inner segment,
/// no control characters.
pub fn path_is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/')
        || bytes
            .iter()
            .any(|&b| b <= 0x20 || b == 0x7f || b == b'\\' || b == b'#')
    {
        return false;
    }
    // Encoded '/', '\\' and NUL, in either case, without allocating (and
    // without looking when there is no '%' at all).
    let encoded_separator = bytes.contains(&b'%')
        && bytes.windows(3).any(|w| {
            w.first() == Some(&b'%')
                && matches!(
                    (
                        w.get(1).map(u8::to_ascii_lowercase),
                        w.get(2).map(u8::to_ascii_lowercase)
                    ),
                    (Some(b'2'), Some(b'f')) | (Some(b'5'), Some(b'c')) | (Some(b'0'), Some(b'0'))
                )
        });
    if encoded_separator {
        return false;
    }
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if seg.is_empty() {
            if !last {
                return false;
            }
            continue;
        }
        if is_dot_segment(seg) {
            return false;
        }
    }
    true
}

/// `.` or `..`, with any dot possibly written `%2e` / `%2E`.
fn is_dot_segment(seg: &str) -> bool {
    let mut rest = seg.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest.first() == Some(&b'.') {
            rest = rest.get(1..).unwrap_or_default();
        } else if rest.len() >= 3
            && rest.first() == Some(&b'%')
            && rest.get(1) == Some(&b'2')
            && rest.get(2).map(u8::to_ascii_lowercase) == Some(b'e')
        {
            rest = rest.get(3..).unwrap_or_default();
        } else {
            return false;
        }
        dots += 1;
    }
    (1..=2).contains(&dots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        assert!(path_is_canonical("/api/domain/odata/Crm_Customers"));
        assert!(path_is_canonical("/api/"));
        assert!(path_is_canonical("/"));
        for bad in [
            "api",
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a%2Fb",
            "/a\\b",
            "/a//b",
            "/a b",
            "/a/..",
        ] {
            assert!(!path_is_canonical(bad), "{bad}");
        }
    }
}

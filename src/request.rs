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
}

impl<'a> Request<'a> {
    /// Builds a request view.
    pub fn new(method: &'a str, path: &'a str, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        Self {
            method,
            path,
            headers,
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
    // Encoded '/', '\\' and NUL, in either case, without allocating.
    let encoded_separator = bytes.windows(3).any(|w| {
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

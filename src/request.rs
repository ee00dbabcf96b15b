//! A borrowed view of one HTTP request, as every adapter can build it.

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

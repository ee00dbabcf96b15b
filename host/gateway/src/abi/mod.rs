//! The proxy-wasm ABI 0.2.1 host side: every hostcall the Rust SDK can import,
//! the memory convention (`proxy_on_memory_allocate`) and the map encoding.
//! Unsupported hostcalls answer `UNIMPLEMENTED`; none traps.

use wasmtime::Linker;

mod codes;
mod foreign;
mod headers;
mod http;
mod logging;
mod memory;
mod shared;
mod state;
mod wasi;

pub use super::map::{Pairs, decode_map, encode_map, le_u32};
pub use codes::{buffer, map, status};
pub use foreign::verify_signature;
pub use memory::resolve;
pub use state::{DispatchedCall, HostState, LocalResponse, Metric, PluginShared, StreamIo};

/// Registers every proxy-wasm hostcall and the WASI functions a wasip1
/// module imports.
pub fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    logging::link_logging(linker)?;
    headers::link_buffers(linker)?;
    headers::link_headers(linker)?;
    http::link_http(linker)?;
    shared::link_shared(linker)?;
    shared::link_metrics(linker)?;
    http::link_contexts(linker)?;
    foreign::link_foreign(linker)?;
    http::link_grpc(linker)?;
    wasi::link_wasi(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trip_and_malformed_input() {
        let pairs = vec![
            (":path".to_owned(), b"/a".to_vec()),
            ("x".to_owned(), Vec::new()),
        ];
        assert_eq!(decode_map(&encode_map(&pairs)), Some(pairs));
        assert_eq!(decode_map(&[]), None);
        assert_eq!(decode_map(&[1, 0, 0, 0]), None);
        let mut bad = encode_map(&[("k".to_owned(), b"v".to_vec())]);
        let last = bad.len() - 1;
        bad[last] = 1;
        assert_eq!(decode_map(&bad), None, "missing NUL terminator");
        let huge = [0xff, 0xff, 0xff, 0x7f];
        assert_eq!(decode_map(&huge), None);
    }
}

//! The local gateway: a proxy-wasm ABI 0.2.1 host on wasmtime that runs the
//! real filter `.wasm` the way Envoy does, so the whole stack runs without
//! Envoy.

pub mod abi;
pub mod map;
pub mod server;
pub mod vm;

//! Adapters: leaf modules that translate one host's interface into the engine's
//! [`crate::Request`] / [`crate::Step`] contract, and nothing more.

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub mod worker;

#[cfg(all(feature = "envoy", target_arch = "wasm32"))]
pub mod envoy;

#[cfg(feature = "envoy-proto")]
pub mod foreign;

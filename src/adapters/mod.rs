//! Adapters: leaf modules that translate one host's interface into the engine's
//! [`crate::Request`] / [`crate::Step`] contract, and nothing more.

#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub mod worker;

// The filter's logic compiles natively too, so its tests run with the core's.
#[cfg(any(feature = "envoy", test))]
pub mod envoy;

#[cfg(any(feature = "envoy-proto", test))]
pub mod foreign;

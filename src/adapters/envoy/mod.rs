//! The proxy-wasm (ABI 0.2.1) adapter for Envoy and Istio.
//!
//! The root context parses the plugin configuration (the policy plus adapter
//! settings), owns the engine and the per-VM state, and runs background work
//! on ticks. Each HTTP context runs the engine on request headers; a
//! `Step::Call` becomes `dispatch_http_call` plus a pause, and the response
//! resumes the engine. Denials become local responses exactly as the core
//! maps them; allows strip incoming identity headers, then set the new ones.
//!
//! Caches: each VM's engine state is backed by Envoy's shared data (a
//! direct-mapped cache written with compare-and-swap), so every worker VM
//! reuses what one verified or introspected. Within a VM, single flight: a
//! stream whose token is already being introspected, or whose issuer's keys
//! are being fetched, parks on that call and is resumed with its outcome
//! (through `proxy_set_effective_context`).
//!
//! Host crypto: when Envoy offers the `verify_signature` foreign function
//! (probed once at configuration, never called through a wrapper that
//! panics), RS256/384/512 signatures are checked by the host; otherwise in
//! wasm. The engine treats both the same way.
//!
//! Layout: the logic (`plugin`, `parking`, `metrics`, `crypto`, `config`)
//! talks to Envoy only through the `host::Host` trait, so it compiles and is
//! tested natively against a mock host; only `abi` and `contexts` are the
//! proxy-wasm glue, built for the filter alone.

// Natively only the tests drive the logic: the proxy-wasm glue that uses all
// of it exists in the filter build alone.
#![cfg_attr(not(all(feature = "envoy", target_arch = "wasm32")), allow(dead_code))]

mod config;
mod crypto;
mod host;
mod metrics;
mod parking;
mod plugin;

#[cfg(all(feature = "envoy", target_arch = "wasm32"))]
mod abi;
#[cfg(all(feature = "envoy", target_arch = "wasm32"))]
mod contexts;

#[cfg(test)]
mod tests;

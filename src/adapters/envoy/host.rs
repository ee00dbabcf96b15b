//! The hostcalls the filter's logic makes, as one trait: the proxy-wasm glue
//! implements it with the real ABI, native tests with a mock that records
//! every call.

use std::time::Duration;

use crate::time::Time;

/// `NotFound` in the proxy-wasm ABI's status codes: what a host without a
/// foreign function answers.
pub(super) const STATUS_NOT_FOUND: u32 = 1;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogLevel {
    /// Per-request detail (denials).
    Debug,
    /// Once per configuration: the plugin is ready, and where it verifies RSA
    /// signatures (host or wasm).
    Info,
    /// A decision log configured at `warn`.
    Warn,
    /// The filter cannot work (bad configuration, a panic).
    Critical,
}

/// What the filter needs from its host. Every method acts on the effective
/// context (stream) unless it says otherwise, and none may fail a request by
/// itself: a refused call becomes an outcome the engine decides on.
pub(super) trait Host {
    /// The host's wall clock.
    fn now(&self) -> Time;
    /// The host's clock in nanoseconds, for timing the filter's own work.
    fn now_ns(&self) -> u64;
    /// Sixteen random bytes (WASI `random_get` in Envoy), or `None` when
    /// the host has no randomness: the secret the JWT cache is keyed under.
    fn random_secret(&self) -> Option<[u8; 16]>;
    /// Writes a log line; logging must never fail a request.
    fn log(&self, level: LogLevel, message: &str);
    /// Defines a counter; `None` when the host refuses.
    fn define_counter(&self, name: &str) -> Option<u32>;
    /// Adds `by` to a counter.
    fn increment_counter(&self, id: u32, by: u64);
    /// Defines a gauge; `None` when the host refuses.
    fn define_gauge(&self, name: &str) -> Option<u32>;
    /// Sets a gauge.
    fn set_gauge(&self, id: u32, value: u64);
    /// Sends an HTTP call to a cluster. The token its response will carry,
    /// or `None` when the host refused it (unknown cluster, bad arguments).
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Option<u32>;
    /// Calls a host foreign function: its result, or the host's status.
    fn call_foreign_function(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, u32>;
    /// Makes later hostcalls act on another stream; `false` when that stream
    /// is gone.
    fn set_effective_context(&self, context_id: u32) -> bool;
    /// Replaces a request header, or removes it when `value` is `None`.
    fn set_request_header(&self, name: &str, value: Option<&str>);
    /// Answers the stream locally.
    fn send_http_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]);
    /// Lets the paused request go on upstream.
    fn resume_http_request(&self);
}

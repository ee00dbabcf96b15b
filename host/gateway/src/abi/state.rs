//! What the host side keeps: one VM's state, the state its VMs share, and
//! the calls and responses a filter produces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wasmtime::{Caller, Memory, TypedFunc};

use crate::map::Pairs;

/// A call the filter dispatched.
#[derive(Debug, Clone)]
pub struct DispatchedCall {
    /// Its token.
    pub token: u32,
    /// The context it was made for (the effective context at the time); its
    /// response is delivered there.
    pub owner: i32,
    /// The cluster name.
    pub cluster: String,
    /// Request headers, pseudo-headers included.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Timeout.
    pub timeout_ms: u64,
}

/// A local response the filter sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A metric the filter defined.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Its name.
    pub name: String,
    /// 0 counter, 1 gauge, 2 histogram.
    pub kind: i32,
    /// Current value (sum for histograms).
    pub value: u64,
}

/// State shared by every VM of one filter: shared data with CAS, metrics.
#[derive(Default)]
pub struct PluginShared {
    /// key → (value, cas).
    pub data: Mutex<HashMap<String, (Vec<u8>, u32)>>,
    /// Metrics by id.
    pub metrics: Mutex<Vec<Metric>>,
    /// Signatures checked through the `verify_signature` foreign function.
    pub signatures_verified: std::sync::atomic::AtomicU64,
}

/// One stream as the host sees it.
#[derive(Debug, Default)]
pub struct StreamIo {
    /// Request headers, pseudo-headers included.
    pub headers: Pairs,
    /// Set by `send_local_response`.
    pub local_response: Option<LocalResponse>,
    /// Set by `continue_stream`.
    pub continued: bool,
    /// Host properties (`request.path`, `source.address`, …).
    pub properties: HashMap<String, Vec<u8>>,
    /// The request body, buffered whole (`proxy_get_buffer_bytes` type 0).
    pub body: Vec<u8>,
}

/// The guest's memory and allocator, resolved once per instance (as Envoy
/// does) instead of by name on every hostcall.
#[derive(Clone)]
pub struct Guest {
    /// The exported `memory`.
    pub memory: Memory,
    /// `proxy_on_memory_allocate` (or `malloc`).
    pub alloc: TypedFunc<i32, i32>,
}

/// What one VM's host side holds.
pub struct HostState {
    /// Set once the instance exists.
    pub guest: Option<Guest>,
    /// The plugin configuration.
    pub plugin_config: Vec<u8>,
    /// The root context's id.
    pub root: i32,
    /// The context hostcalls act on (`proxy_set_effective_context`).
    pub effective: i32,
    /// Live streams by context id.
    pub streams: HashMap<i32, StreamIo>,
    /// Whether the `verify_signature` foreign function is offered.
    pub verify_signature: bool,
    /// Calls dispatched during a callback.
    pub dispatched: Vec<DispatchedCall>,
    /// The response being delivered to `on_http_call_response`.
    pub call_response: Option<(Pairs, Vec<u8>)>,
    /// Known clusters.
    pub clusters: Arc<HashMap<String, String>>,
    /// Tick period requested by the root context.
    pub tick_ms: u64,
    /// Unix nanoseconds to report; `None` reads the system clock.
    pub fixed_time_ns: Option<u64>,
    /// Cross-VM state.
    pub shared: Arc<PluginShared>,
    /// Next http_call token.
    pub next_token: u32,
    /// Memory and table limits.
    pub limits: wasmtime::StoreLimits,
    /// Decision-log lines the filter wrote during a callback.
    pub decision_lines: Vec<String>,
}

impl HostState {
    /// The effective stream, if the effective context is a stream.
    pub fn stream(&mut self) -> Option<&mut StreamIo> {
        self.streams.get_mut(&self.effective)
    }
}

/// The caller every hostcall receives.
pub(super) type C<'a> = Caller<'a, HostState>;

//! The proxy-wasm ABI 0.2.1 host side: every hostcall the Rust SDK can import,
//! the memory convention (`proxy_on_memory_allocate`) and the map encoding.
//! Unsupported hostcalls answer `UNIMPLEMENTED`; none traps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use erpgate::adapters::foreign;
use wasmtime::{Caller, Extern, Linker, Memory};

/// `proxy_status_t`.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// Not found.
    pub const NOT_FOUND: i32 = 1;
    /// Bad argument (e.g. an unknown cluster).
    pub const BAD_ARGUMENT: i32 = 2;
    /// Compare-and-swap mismatch.
    pub const CAS_MISMATCH: i32 = 8;
    /// Internal failure.
    pub const INTERNAL_FAILURE: i32 = 10;
    /// Not implemented by this host.
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Map types of the ABI.
pub mod map {
    /// Request headers.
    pub const REQUEST_HEADERS: i32 = 0;
    /// Response headers.
    pub const RESPONSE_HEADERS: i32 = 2;
    /// Headers of an `http_call` response.
    pub const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
}

/// Buffer types of the ABI.
pub mod buffer {
    /// Body of an `http_call` response.
    pub const HTTP_CALL_RESPONSE_BODY: i32 = 4;
    /// VM configuration.
    pub const VM_CONFIGURATION: i32 = 6;
    /// Plugin configuration.
    pub const PLUGIN_CONFIGURATION: i32 = 7;
}

pub use super::map::{Pairs, decode_map, encode_map, le_u32};

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
pub struct Shared {
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
}

/// What one VM's host side holds.
pub struct HostState {
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
    pub shared: Arc<Shared>,
    /// Next http_call token.
    pub next_token: u32,
    /// Memory and table limits.
    pub limits: wasmtime::StoreLimits,
}

fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller)?;
    let (ptr, len) = (usize::try_from(ptr).ok()?, usize::try_from(len).ok()?);
    if len > 16 * 1024 * 1024 {
        return None;
    }
    let mut buf = vec![0u8; len];
    mem.read(&*caller, ptr, &mut buf).ok()?;
    Some(buf)
}

fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> Option<()> {
    let mem = memory(caller)?;
    mem.write(caller, usize::try_from(ptr).ok()?, &value.to_le_bytes())
        .ok()
}

/// Copies `data` into guest memory allocated by the guest, and stores the
/// pointer and length at `ret_ptr` / `ret_len`.
fn give(caller: &mut Caller<'_, HostState>, data: &[u8], ret_ptr: i32, ret_len: i32) -> i32 {
    let alloc = match caller
        .get_export("proxy_on_memory_allocate")
        .or_else(|| caller.get_export("malloc"))
    {
        Some(Extern::Func(f)) => f,
        _ => return status::INTERNAL_FAILURE,
    };
    let Ok(alloc) = alloc.typed::<i32, i32>(&*caller) else {
        return status::INTERNAL_FAILURE;
    };
    let Ok(size) = i32::try_from(data.len()) else {
        return status::INTERNAL_FAILURE;
    };
    let ptr = if data.is_empty() {
        0
    } else {
        match alloc.call(&mut *caller, size) {
            Ok(p) if p != 0 => p,
            _ => return status::INTERNAL_FAILURE,
        }
    };
    let Some(mem) = memory(caller) else {
        return status::INTERNAL_FAILURE;
    };
    if !data.is_empty() && mem.write(&mut *caller, ptr as usize, data).is_err() {
        return status::INTERNAL_FAILURE;
    }
    match (
        write_u32(caller, ret_ptr, ptr as u32),
        write_u32(caller, ret_len, data.len() as u32),
    ) {
        (Some(()), Some(())) => status::OK,
        _ => status::INTERNAL_FAILURE,
    }
}

impl HostState {
    /// The effective stream, if the effective context is a stream.
    pub fn stream(&mut self) -> Option<&mut StreamIo> {
        self.streams.get_mut(&self.effective)
    }
}

fn header_map(state: &mut HostState, map_type: i32) -> Option<&mut Vec<(String, Vec<u8>)>> {
    match map_type {
        map::REQUEST_HEADERS => state.stream().map(|s| &mut s.headers),
        map::HTTP_CALL_RESPONSE_HEADERS => state.call_response.as_mut().map(|(h, _)| h),
        _ => None,
    }
}

fn level(l: i32) -> tracing::Level {
    match l {
        0 => tracing::Level::TRACE,
        1 => tracing::Level::DEBUG,
        2 => tracing::Level::INFO,
        3 => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    }
}

type C<'a> = Caller<'a, HostState>;

/// Envoy's `verify_signature`, natively (BoringSSL): `None` (`BAD_ARGUMENT`)
/// when the arguments do not decode or carry no usable key, as in Envoy.
pub fn verify_signature(args: &[u8]) -> Option<Vec<u8>> {
    use boring::hash::MessageDigest;
    use boring::pkey::PKey;
    use prost::Message;
    let args = foreign::VerifySignatureArguments::decode(args).ok()?;
    let key = if !args.public_key.is_empty() {
        PKey::public_key_from_der(&args.public_key).ok()?
    } else if !args.public_key_pem.is_empty() {
        PKey::public_key_from_pem(args.public_key_pem.as_bytes()).ok()?
    } else {
        return None;
    };
    let digest = match args.hash_function.as_str() {
        "sha1" => Some(MessageDigest::sha1()),
        "sha224" => Some(MessageDigest::sha224()),
        "sha256" => Some(MessageDigest::sha256()),
        "sha384" => Some(MessageDigest::sha384()),
        "sha512" => Some(MessageDigest::sha512()),
        _ => None,
    };
    let (result, error) = match digest {
        None => (false, format!("{} is not supported.", args.hash_function)),
        Some(md) => {
            let valid = boring::sign::Verifier::new(md, &key)
                .and_then(|mut v| v.verify_oneshot(&args.signature, &args.text))
                .unwrap_or(false);
            (
                valid,
                if valid {
                    String::new()
                } else {
                    "Failed to verify signature.".into()
                },
            )
        }
    };
    Some(foreign::VerifySignatureResult { result, error }.encode_to_vec())
}

/// Registers every proxy-wasm hostcall and the WASI functions a wasip1
/// module imports.
pub fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
    linker.func_wrap(
        m,
        "proxy_log",
        |mut c: C<'_>, lvl: i32, ptr: i32, len: i32| -> i32 {
            let Some(msg) = read(&mut c, ptr, len) else {
                return status::BAD_ARGUMENT;
            };
            let msg = String::from_utf8_lossy(&msg);
            match level(lvl) {
                tracing::Level::ERROR => tracing::error!(target: "erpgate::filter", "{msg}"),
                tracing::Level::WARN => tracing::warn!(target: "erpgate::filter", "{msg}"),
                tracing::Level::INFO => tracing::info!(target: "erpgate::filter", "{msg}"),
                _ => tracing::debug!(target: "erpgate::filter", "{msg}"),
            }
            status::OK
        },
    )?;
    linker.func_wrap(m, "proxy_get_log_level", |mut c: C<'_>, ret: i32| -> i32 {
        match write_u32(&mut c, ret, 2) {
            Some(()) => status::OK,
            None => status::BAD_ARGUMENT,
        }
    })?;
    linker.func_wrap(
        m,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> i32 {
            let ns = c.data().fixed_time_ns.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
            });
            let Some(mem) = memory(&mut c) else {
                return status::INTERNAL_FAILURE;
            };
            match mem.write(&mut c, ret as usize, &ns.to_le_bytes()) {
                Ok(()) => status::OK,
                Err(_) => status::BAD_ARGUMENT,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| -> i32 {
            c.data_mut().tick_ms = u64::try_from(ms).unwrap_or(0);
            status::OK
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let data = match kind {
                buffer::PLUGIN_CONFIGURATION => c.data().plugin_config.clone(),
                buffer::VM_CONFIGURATION => Vec::new(),
                buffer::HTTP_CALL_RESPONSE_BODY => match &c.data().call_response {
                    Some((_, body)) => body.clone(),
                    None => return status::NOT_FOUND,
                },
                _ => return status::NOT_FOUND,
            };
            // The guest passes sizes as u32; usize::MAX arrives as 0xFFFFFFFF.
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            let end = start.saturating_add(max).min(data.len());
            let slice = data.get(start.min(end)..end).unwrap_or_default().to_vec();
            give(&mut c, &slice, ret_ptr, ret_len)
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_set_buffer_bytes",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 { status::UNIMPLEMENTED },
    )?;
    linker.func_wrap(
        m,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map_type: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let Some(pairs) = header_map(c.data_mut(), map_type).map(|m| encode_map(m)) else {
                return status::NOT_FOUND;
            };
            give(&mut c, &pairs, ret_ptr, ret_len)
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map_type: i32, ptr: i32, len: i32| -> i32 {
            let Some(bytes) = read(&mut c, ptr, len) else {
                return status::BAD_ARGUMENT;
            };
            let Some(pairs) = decode_map(&bytes) else {
                return status::BAD_ARGUMENT;
            };
            match header_map(c.data_mut(), map_type) {
                Some(m) => {
                    *m = pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect();
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_get_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let Some(key) = read(&mut c, kp, kl) else {
                return status::BAD_ARGUMENT;
            };
            let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
            let value = header_map(c.data_mut(), map_type)
                .and_then(|m| m.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()));
            match value {
                Some(v) => give(&mut c, &v, ret_ptr, ret_len),
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_add_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            let (Some(k), Some(v)) = (read(&mut c, kp, kl), read(&mut c, vp, vl)) else {
                return status::BAD_ARGUMENT;
            };
            match header_map(c.data_mut(), map_type) {
                Some(m) => {
                    m.push((String::from_utf8_lossy(&k).to_ascii_lowercase(), v));
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_replace_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            let (Some(k), Some(v)) = (read(&mut c, kp, kl), read(&mut c, vp, vl)) else {
                return status::BAD_ARGUMENT;
            };
            let key = String::from_utf8_lossy(&k).to_ascii_lowercase();
            match header_map(c.data_mut(), map_type) {
                Some(m) => {
                    m.retain(|(name, _)| *name != key);
                    m.push((key, v));
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32| -> i32 {
            let Some(k) = read(&mut c, kp, kl) else {
                return status::BAD_ARGUMENT;
            };
            let key = String::from_utf8_lossy(&k).to_ascii_lowercase();
            match header_map(c.data_mut(), map_type) {
                Some(m) => {
                    m.retain(|(name, _)| *name != key);
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_send_local_response",
        |mut c: C<'_>,
         code: i32,
         _dp: i32,
         _dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         _grpc: i32|
         -> i32 {
            let (Some(body), Some(headers)) = (read(&mut c, bp, bl), read(&mut c, hp, hl)) else {
                return status::BAD_ARGUMENT;
            };
            let Some(headers) = decode_map(&headers) else {
                return status::BAD_ARGUMENT;
            };
            let Ok(status) = u16::try_from(code) else {
                return status::BAD_ARGUMENT;
            };
            match c.data_mut().stream() {
                Some(stream) => {
                    stream.local_response = Some(LocalResponse {
                        status,
                        headers,
                        body,
                    });
                    status::OK
                }
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_continue_stream",
        |mut c: C<'_>, _stream: i32| -> i32 {
            match c.data_mut().stream() {
                Some(stream) => {
                    stream.continued = true;
                    status::OK
                }
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    linker.func_wrap(m, "proxy_close_stream", |_: C<'_>, _: i32| -> i32 {
        status::UNIMPLEMENTED
    })?;
    linker.func_wrap(
        m,
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         _tp: i32,
         _tl: i32,
         timeout: i32,
         ret: i32|
         -> i32 {
            let (Some(cluster), Some(headers), Some(body)) = (
                read(&mut c, up, ul),
                read(&mut c, hp, hl),
                read(&mut c, bp, bl),
            ) else {
                return status::BAD_ARGUMENT;
            };
            let cluster = String::from_utf8_lossy(&cluster).into_owned();
            if !c.data().clusters.contains_key(&cluster) {
                return status::BAD_ARGUMENT;
            }
            let Some(headers) = decode_map(&headers) else {
                return status::BAD_ARGUMENT;
            };
            let state = c.data_mut();
            state.next_token = state.next_token.wrapping_add(1).max(1);
            let token = state.next_token;
            let owner = state.effective;
            state.dispatched.push(DispatchedCall {
                token,
                owner,
                cluster,
                headers,
                body,
                timeout_ms: u64::try_from(timeout).unwrap_or(0),
            });
            match write_u32(&mut c, ret, token) {
                Some(()) => status::OK,
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, ret_ptr: i32, ret_len: i32, cas_ptr: i32| -> i32 {
            let Some(k) = read(&mut c, kp, kl) else {
                return status::BAD_ARGUMENT;
            };
            let key = String::from_utf8_lossy(&k).into_owned();
            let found = c
                .data()
                .shared
                .data
                .lock()
                .ok()
                .and_then(|d| d.get(&key).cloned());
            match found {
                Some((value, cas)) => {
                    let s = give(&mut c, &value, ret_ptr, ret_len);
                    if s != status::OK {
                        return s;
                    }
                    match write_u32(&mut c, cas_ptr, cas) {
                        Some(()) => status::OK,
                        None => status::BAD_ARGUMENT,
                    }
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> i32 {
            let (Some(k), Some(v)) = (read(&mut c, kp, kl), read(&mut c, vp, vl)) else {
                return status::BAD_ARGUMENT;
            };
            let key = String::from_utf8_lossy(&k).into_owned();
            let Ok(mut data) = c.data().shared.data.lock() else {
                return status::INTERNAL_FAILURE;
            };
            let entry = data.entry(key).or_insert_with(|| (Vec::new(), 0));
            let cas = cas as u32;
            if cas != 0 && cas != entry.1 {
                return status::CAS_MISMATCH;
            }
            *entry = (v, entry.1.wrapping_add(1).max(1));
            status::OK
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, np: i32, nl: i32, ret: i32| -> i32 {
            let Some(name) = read(&mut c, np, nl) else {
                return status::BAD_ARGUMENT;
            };
            let name = String::from_utf8_lossy(&name).into_owned();
            let id = {
                let Ok(mut metrics) = c.data().shared.metrics.lock() else {
                    return status::INTERNAL_FAILURE;
                };
                match metrics.iter().position(|m| m.name == name) {
                    Some(i) => i,
                    None => {
                        metrics.push(Metric {
                            name,
                            kind,
                            value: 0,
                        });
                        metrics.len() - 1
                    }
                }
            };
            match write_u32(&mut c, ret, id as u32) {
                Some(()) => status::OK,
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_increment_metric",
        |c: C<'_>, id: i32, offset: i64| -> i32 {
            let Ok(mut metrics) = c.data().shared.metrics.lock() else {
                return status::INTERNAL_FAILURE;
            };
            match metrics.get_mut(id as usize) {
                Some(m) => {
                    m.value = m.value.saturating_add_signed(offset);
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_record_metric",
        |c: C<'_>, id: i32, value: i64| -> i32 {
            let Ok(mut metrics) = c.data().shared.metrics.lock() else {
                return status::INTERNAL_FAILURE;
            };
            match metrics.get_mut(id as usize) {
                Some(m) if m.kind == 2 => {
                    m.value = m.value.saturating_add(value as u64);
                    status::OK
                }
                Some(m) => {
                    m.value = value as u64;
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| -> i32 {
            let value = c
                .data()
                .shared
                .metrics
                .lock()
                .ok()
                .and_then(|m| m.get(id as usize).map(|m| m.value));
            let Some(value) = value else {
                return status::NOT_FOUND;
            };
            let Some(mem) = memory(&mut c) else {
                return status::INTERNAL_FAILURE;
            };
            match mem.write(&mut c, ret as usize, &value.to_le_bytes()) {
                Ok(()) => status::OK,
                Err(_) => status::BAD_ARGUMENT,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let Some(path) = read(&mut c, pp, pl) else {
                return status::BAD_ARGUMENT;
            };
            // The path is NUL-separated segments: request\0path.
            let key = path
                .split(|b| *b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(".");
            let value = c
                .data_mut()
                .stream()
                .and_then(|s| s.properties.get(&key).cloned());
            match value {
                Some(v) => give(&mut c, &v, ret_ptr, ret_len),
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_set_property",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32| -> i32 { status::UNIMPLEMENTED },
    )?;
    linker.func_wrap(
        m,
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| -> i32 {
            let state = c.data_mut();
            if id == state.root || state.streams.contains_key(&id) {
                state.effective = id;
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    linker.func_wrap(m, "proxy_done", |_: C<'_>| -> i32 { status::OK })?;
    linker.func_wrap(
        m,
        "proxy_get_status",
        |_: C<'_>, _: i32, _: i32, _: i32| -> i32 { status::UNIMPLEMENTED },
    )?;
    linker.func_wrap(
        m,
        "proxy_call_foreign_function",
        |mut c: C<'_>, np: i32, nl: i32, ap: i32, al: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let (Some(name), Some(args)) = (read(&mut c, np, nl), read(&mut c, ap, al)) else {
                return status::BAD_ARGUMENT;
            };
            if name != foreign::VERIFY_SIGNATURE.as_bytes() || !c.data().verify_signature {
                return status::NOT_FOUND;
            }
            match verify_signature(&args) {
                Some(result) => {
                    c.data()
                        .shared
                        .signatures_verified
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    give(&mut c, &result, ret_ptr, ret_len)
                }
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    for name in ["proxy_register_shared_queue", "proxy_resolve_shared_queue"] {
        linker.func_wrap(m, name, |_: C<'_>, _: i32, _: i32, _: i32| -> i32 {
            status::UNIMPLEMENTED
        })?;
    }
    linker.func_wrap(
        m,
        "proxy_enqueue_shared_queue",
        |_: C<'_>, _: i32, _: i32, _: i32| -> i32 { status::UNIMPLEMENTED },
    )?;
    linker.func_wrap(
        m,
        "proxy_dequeue_shared_queue",
        |_: C<'_>, _: i32, _: i32, _: i32| -> i32 { status::UNIMPLEMENTED },
    )?;
    linker.func_wrap(
        m,
        "proxy_grpc_call",
        |_: C<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> i32 { status::UNIMPLEMENTED },
    )?;
    linker.func_wrap(
        m,
        "proxy_grpc_stream",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 {
            status::UNIMPLEMENTED
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_grpc_send",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32| -> i32 { status::UNIMPLEMENTED },
    )?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        linker.func_wrap(m, name, |_: C<'_>, _: i32| -> i32 { status::UNIMPLEMENTED })?;
    }
    wasi(linker)
}

/// The few WASI preview-1 functions a Rust wasip1 cdylib imports.
fn wasi(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let w = "wasi_snapshot_preview1";
    const BADF: i32 = 8;
    linker.func_wrap(w, "fd_write", |mut c: C<'_>, fd: i32, iovs: i32, n: i32, written: i32| -> i32 {
        // stdout/stderr go to the host log; nothing else is open.
        if fd != 1 && fd != 2 {
            return BADF;
        }
        let mut total = 0u32;
        for i in 0..n.max(0) {
            let Some(iov) = read(&mut c, iovs + i * 8, 8) else { return 21 };
            let (Some(ptr), Some(len)) = (iov.get(..4).and_then(le_u32), iov.get(4..).and_then(le_u32)) else { return 21 };
            let (ptr, len) = (ptr as i32, len as i32);
            if let Some(bytes) = read(&mut c, ptr, len) {
                tracing::debug!(target: "erpgate::filter", "{}", String::from_utf8_lossy(&bytes).trim_end());
            }
            total = total.saturating_add(len.max(0) as u32);
        }
        match write_u32(&mut c, written, total) {
            Some(()) => 0,
            None => 21,
        }
    })?;
    linker.func_wrap(w, "random_get", |mut c: C<'_>, ptr: i32, len: i32| -> i32 {
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0).min(1 << 16)];
        rand::Rng::fill(&mut rand::rng(), buf.as_mut_slice());
        let Some(mem) = memory(&mut c) else { return 21 };
        match mem.write(&mut c, ptr as usize, &buf) {
            Ok(()) => 0,
            Err(_) => 21,
        }
    })?;
    linker.func_wrap(
        w,
        "clock_time_get",
        |mut c: C<'_>, _id: i32, _precision: i64, ret: i32| -> i32 {
            let ns = c.data().fixed_time_ns.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
            });
            let Some(mem) = memory(&mut c) else { return 21 };
            match mem.write(&mut c, ret as usize, &ns.to_le_bytes()) {
                Ok(()) => 0,
                Err(_) => 21,
            }
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(w, name, |mut c: C<'_>, a: i32, b: i32| -> i32 {
            match (write_u32(&mut c, a, 0), write_u32(&mut c, b, 0)) {
                (Some(()), Some(())) => 0,
                _ => 21,
            }
        })?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(w, name, |_: C<'_>, _: i32, _: i32| -> i32 { 0 })?;
    }
    linker.func_wrap(
        w,
        "proc_exit",
        |_: C<'_>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::format_err!("the filter called proc_exit({code})"))
        },
    )?;
    linker.func_wrap(w, "sched_yield", |_: C<'_>| -> i32 { 0 })?;
    linker.func_wrap(w, "fd_close", |_: C<'_>, _: i32| -> i32 { BADF })?;
    linker.func_wrap(w, "fd_fdstat_get", |_: C<'_>, _: i32, _: i32| -> i32 {
        BADF
    })?;
    linker.func_wrap(
        w,
        "fd_seek",
        |_: C<'_>, _: i32, _: i64, _: i32, _: i32| -> i32 { BADF },
    )?;
    linker.func_wrap(w, "fd_prestat_get", |_: C<'_>, _: i32, _: i32| -> i32 {
        BADF
    })?;
    linker.func_wrap(
        w,
        "fd_prestat_dir_name",
        |_: C<'_>, _: i32, _: i32, _: i32| -> i32 { BADF },
    )?;
    Ok(())
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

//! Hostcalls through the raw ABI where the SDK's wrappers panic on a status
//! they do not expect: metrics, shared data, the effective context and
//! foreign functions are optional or may fail on some hosts, and a filter
//! must never trap over that.

// The ABI is `extern "C"`; every call below states why it is sound.
#![allow(unsafe_code, clashing_extern_declarations)]

/// `Ok` in the ABI's status codes.
const OK: u32 = 0;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_define_metric(kind: u32, name: *const u8, name_len: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_len: usize,
        value: *mut *mut u8,
        value_len: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
        cas: u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_len: usize,
        args: *const u8,
        args_len: usize,
        result: *mut *mut u8,
        result_len: *mut usize,
    ) -> u32;
}

/// Takes ownership of a buffer the host allocated through
/// `proxy_on_memory_allocate` (the SDK's allocator: a `Vec` of exactly
/// that capacity).
fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: the host filled `len` bytes at `ptr`, which it obtained from
    // the SDK's `proxy_on_memory_allocate(len)`, a leaked `Vec<u8>` with
    // capacity `len`; ownership passes to us exactly once.
    unsafe { Vec::from_raw_parts(ptr, len, len) }
}

/// A shared-data value and its CAS version.
pub(super) fn get_shared(key: &str) -> Option<(Vec<u8>, u32)> {
    let (mut ptr, mut len, mut cas) = (std::ptr::null_mut(), 0usize, 0u32);
    // SAFETY: `key` is valid for its length; the out-pointers are valid
    // and writable for the duration of the call.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut len, &mut cas) };
    let value = take(ptr, len);
    (status == OK).then_some((value, cas))
}

/// Stores a shared-data value if its version is still `cas` (0: always).
pub(super) fn set_shared(key: &str, value: &[u8], cas: u32) -> bool {
    // SAFETY: both buffers are valid for their lengths during the call.
    let status =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    status == OK
}

/// Makes later hostcalls act on another context (stream).
pub(super) fn set_effective_context(id: u32) -> bool {
    // SAFETY: plain integer argument.
    unsafe { proxy_set_effective_context(id) == OK }
}

/// Calls a host foreign function: `Ok(result)` or the status.
pub(super) fn call_foreign(name: &str, args: &[u8]) -> Result<Vec<u8>, u32> {
    let (mut ptr, mut len) = (std::ptr::null_mut(), 0usize);
    // SAFETY: name and args are valid for their lengths; the out-pointers
    // are valid and writable during the call.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut ptr,
            &mut len,
        )
    };
    let result = take(ptr, len);
    if status == OK {
        Ok(result)
    } else {
        Err(status)
    }
}

/// Defines a metric (kind 0: counter). `None` when the host refuses.
pub(super) fn define(kind: u32, name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: `name` is valid for `name.len()` bytes during the call, and
    // `id` is a valid, writable u32 the host fills in.
    let status = unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    (status == 0).then_some(id)
}

/// Sets a gauge.
pub(super) fn record(id: u32, value: u64) {
    // SAFETY: plain integer arguments; the status is ignored on purpose.
    let _ = unsafe { proxy_record_metric(id, value) };
}

pub(super) fn increment(id: u32, by: u64) {
    if by == 0 {
        return;
    }
    // SAFETY: plain integer arguments; the status is ignored on purpose.
    let _ = unsafe { proxy_increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX)) };
}

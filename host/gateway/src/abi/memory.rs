//! Guest memory access: reading arguments, writing results, and handing
//! data to the guest through its allocator (`proxy_on_memory_allocate`).

use wasmtime::{Caller, Extern, Memory};

use super::codes::status;
use super::state::HostState;

pub(super) fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

pub(super) fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller)?;
    let (ptr, len) = (usize::try_from(ptr).ok()?, usize::try_from(len).ok()?);
    if len > 16 * 1024 * 1024 {
        return None;
    }
    let mut buf = vec![0u8; len];
    mem.read(&*caller, ptr, &mut buf).ok()?;
    Some(buf)
}

pub(super) fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> Option<()> {
    let mem = memory(caller)?;
    mem.write(caller, usize::try_from(ptr).ok()?, &value.to_le_bytes())
        .ok()
}

/// Copies `data` into guest memory allocated by the guest, and stores the
/// pointer and length at `ret_ptr` / `ret_len`.
pub(super) fn give(
    caller: &mut Caller<'_, HostState>,
    data: &[u8],
    ret_ptr: i32,
    ret_len: i32,
) -> i32 {
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

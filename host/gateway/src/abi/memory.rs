//! Guest memory access: reading arguments, writing results, and handing
//! data to the guest through its allocator (`proxy_on_memory_allocate`).

use wasmtime::{AsContextMut, Caller, Extern, Instance, Memory};

use super::codes::status;
use super::state::{Guest, HostState};

/// Resolves the guest's memory and allocator once, after instantiation.
pub fn resolve(mut store: impl AsContextMut<Data = HostState>, instance: &Instance) {
    let memory = instance.get_memory(&mut store, "memory");
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
        .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
        .ok();
    store.as_context_mut().data_mut().guest = memory
        .zip(alloc)
        .map(|(memory, alloc)| Guest { memory, alloc });
}

pub(super) fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    if let Some(guest) = &caller.data().guest {
        return Some(guest.memory);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// Allocates `size` bytes in the guest through its allocator.
fn allocate(caller: &mut Caller<'_, HostState>, size: i32) -> Option<i32> {
    // Taken out for the call and put back, not cloned: a `TypedFunc`'s
    // clone re-roots its type in the engine's registry.
    if let Some(guest) = caller.data_mut().guest.take() {
        let ptr = guest.alloc.call(&mut *caller, size);
        caller.data_mut().guest = Some(guest);
        return ptr.ok();
    }
    let alloc = match caller
        .get_export("proxy_on_memory_allocate")
        .or_else(|| caller.get_export("malloc"))
    {
        Some(Extern::Func(f)) => f.typed::<i32, i32>(&*caller).ok()?,
        _ => return None,
    };
    alloc.call(&mut *caller, size).ok()
}

/// Runs `f` on the host state next to the guest's memory, so that
/// arguments are read in place ([`at`]) instead of copied.
pub(super) fn with_guest<R>(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut HostState, &[u8]) -> R,
) -> Option<R> {
    let mem = memory(caller)?;
    let (data, state) = mem.data_and_store_mut(caller);
    Some(f(state, data))
}

/// The guest's bytes at `ptr..ptr + len`; `None` outside its memory.
pub(super) fn at(mem: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    let (ptr, len) = (usize::try_from(ptr).ok()?, usize::try_from(len).ok()?);
    mem.get(ptr..ptr.checked_add(len)?)
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
    let Ok(size) = i32::try_from(data.len()) else {
        return status::INTERNAL_FAILURE;
    };
    let ptr = if data.is_empty() {
        0
    } else {
        match allocate(caller, size) {
            Some(p) if p != 0 => p,
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

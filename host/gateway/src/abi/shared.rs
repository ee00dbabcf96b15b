//! Shared data (with compare-and-swap), shared queues (unsupported) and
//! metrics.

use wasmtime::Linker;

use super::codes::status;
use super::memory::{give, memory, read, write_u32};
use super::state::{C, HostState, Metric};

/// Registers the shared-data and shared-queue hostcalls.
pub(super) fn link_shared(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
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
    Ok(())
}

/// Registers the metric hostcalls.
pub(super) fn link_metrics(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
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
    Ok(())
}

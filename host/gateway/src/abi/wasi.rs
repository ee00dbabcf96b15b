//! The WASI preview-1 functions a Rust wasip1 cdylib imports.

use wasmtime::Linker;

use super::memory::{memory, read, write_u32};
use super::state::{C, HostState};
use crate::map::le_u32;

/// The few WASI preview-1 functions a Rust wasip1 cdylib imports.
pub(super) fn link_wasi(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
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

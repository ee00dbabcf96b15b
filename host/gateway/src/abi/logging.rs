//! Logging, the clock and the tick timer.

use wasmtime::Linker;

use super::codes::status;
use super::memory::{memory, read, write_u32};
use super::state::{C, HostState};

/// How a decision-log line begins (`erpgate.decision.v1`).
const DECISION_PREFIX: &str = "{\"schema\":\"erpgate.decision.";

/// A callback decides a few streams at most; a filter that logs more
/// cannot grow the host's memory with them.
const MAX_LINES_PER_CALLBACK: usize = 1024;

fn level(l: i32) -> tracing::Level {
    match l {
        0 => tracing::Level::TRACE,
        1 => tracing::Level::DEBUG,
        2 => tracing::Level::INFO,
        3 => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    }
}

/// Registers the logging, clock and tick hostcalls.
pub(super) fn link_logging(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
    linker.func_wrap(
        m,
        "proxy_log",
        |mut c: C<'_>, lvl: i32, ptr: i32, len: i32| -> i32 {
            let Some(msg) = read(&mut c, ptr, len) else {
                return status::BAD_ARGUMENT;
            };
            let msg = String::from_utf8_lossy(&msg);
            // Decision-log lines are data, not diagnostics: kept for the
            // caller (the gateway prints them to stdout).
            if msg.starts_with(DECISION_PREFIX) {
                let lines = &mut c.data_mut().decision_lines;
                if lines.len() < MAX_LINES_PER_CALLBACK {
                    lines.push(msg.into_owned());
                }
                return status::OK;
            }
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
    Ok(())
}

//! Local responses, stream control, outgoing HTTP calls, gRPC (unsupported)
//! and the effective context.

use wasmtime::Linker;

use super::codes::status;
use super::memory::{read, write_u32};
use super::state::{C, DispatchedCall, HostState, LocalResponse};
use crate::map::decode_map;

/// Registers local responses, stream control and `proxy_http_call`.
pub(super) fn link_http(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
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
    Ok(())
}

/// Registers the effective-context, `proxy_done` and `proxy_get_status` hostcalls.
pub(super) fn link_contexts(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
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
    Ok(())
}

/// Registers the gRPC hostcalls, none of which this host supports.
pub(super) fn link_grpc(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
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
    Ok(())
}

//! Header maps, buffers and stream properties.

use wasmtime::Linker;

use super::codes::{buffer, map, status};
use super::memory::{at, give, read, with_guest};
use super::state::{C, HostState};
use crate::map::{Pairs, decode_map, encode_map};

fn header_map(state: &mut HostState, map_type: i32) -> Option<&mut Vec<(String, Vec<u8>)>> {
    match map_type {
        map::REQUEST_HEADERS => state.stream().map(|s| &mut s.headers),
        map::HTTP_CALL_RESPONSE_HEADERS => state.call_response.as_mut().map(|(h, _)| h),
        _ => None,
    }
}

/// Registers the header-map hostcalls.
pub(super) fn link_headers(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
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
            let found = with_guest(&mut c, |state, mem| {
                let key = at(mem, kp, kl).ok_or(status::BAD_ARGUMENT)?;
                header_map(state, map_type)
                    .and_then(|m| {
                        m.iter()
                            .find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(key))
                    })
                    .map(|(_, v)| v.clone())
                    .ok_or(status::NOT_FOUND)
            });
            match found.unwrap_or(Err(status::BAD_ARGUMENT)) {
                Ok(v) => give(&mut c, v.as_slice(), ret_ptr, ret_len),
                Err(code) => code,
            }
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_add_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            edit(
                &mut c,
                map_type,
                (kp, kl),
                Some((vp, vl)),
                |m, key, value| {
                    m.push((key, value.to_vec()));
                },
            )
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_replace_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            edit(
                &mut c,
                map_type,
                (kp, kl),
                Some((vp, vl)),
                |m, key, value| {
                    m.retain(|(name, _)| *name != key);
                    m.push((key, value.to_vec()));
                },
            )
        },
    )?;
    linker.func_wrap(
        m,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32| -> i32 {
            edit(&mut c, map_type, (kp, kl), None, |m, key, _| {
                m.retain(|(name, _)| *name != key);
            })
        },
    )?;
    Ok(())
}

/// One edit of a header map, reading the key (lowercased, as header names
/// are) and the value straight from guest memory.
fn edit(
    c: &mut C<'_>,
    map_type: i32,
    (kp, kl): (i32, i32),
    value: Option<(i32, i32)>,
    change: impl FnOnce(&mut Pairs, String, &[u8]),
) -> i32 {
    let done = with_guest(c, |state, mem| {
        let key = String::from_utf8_lossy(at(mem, kp, kl)?).to_ascii_lowercase();
        let value = match value {
            Some((vp, vl)) => at(mem, vp, vl)?,
            None => &[],
        };
        Some(match header_map(state, map_type) {
            Some(m) => {
                change(m, key, value);
                status::OK
            }
            None => status::NOT_FOUND,
        })
    });
    done.flatten().unwrap_or(status::BAD_ARGUMENT)
}

/// Registers the buffer and property hostcalls.
pub(super) fn link_buffers(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
    linker.func_wrap(
        m,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let data = match kind {
                buffer::PLUGIN_CONFIGURATION => c.data().plugin_config.clone(),
                buffer::VM_CONFIGURATION => Vec::new(),
                buffer::HTTP_REQUEST_BODY => match c.data_mut().stream() {
                    Some(stream) => stream.body.clone(),
                    None => return status::NOT_FOUND,
                },
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
    Ok(())
}

//! Policy sections compiled on their own, so one compile can report the
//! errors of every section.

use std::time::Duration;

use super::{
    Ctx, Introspection, Limits, PolicyError, RevocationFeed, cache, non_empty, range, raw, upstream,
};

/// The value, or `None` with the error kept for the report.
pub(super) fn keep<T>(errors: &mut Vec<PolicyError>, result: Result<T, PolicyError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

pub(super) fn compile_introspection(
    ri: &raw::RawIntrospection,
) -> Result<Introspection, PolicyError> {
    let ctx = Ctx::top("introspection");
    let endpoint = upstream(
        &ctx,
        &raw::RawUpstreamParts {
            upstream: &ri.upstream,
            path: &ri.path,
            authority: ri.authority.as_deref(),
            timeout_ms: ri.timeout_ms,
        },
    )?;
    non_empty(&ctx.sub("token_type_hint"), &ri.token_type_hint)?;
    Ok(Introspection {
        endpoint,
        token_type_hint: ri.token_type_hint.clone(),
        cache: cache(&ctx.sub("cache"), &ri.cache, 60)?,
    })
}

pub(super) fn compile_feed(rf: &raw::RawFeed) -> Result<RevocationFeed, PolicyError> {
    let ctx = Ctx::top("revocation_feed");
    let endpoint = upstream(
        &ctx,
        &raw::RawUpstreamParts {
            upstream: &rf.upstream,
            path: &rf.path,
            authority: rf.authority.as_deref(),
            timeout_ms: rf.timeout_ms,
        },
    )?;
    let poll = range(
        &ctx.sub("poll_interval_ms"),
        rf.poll_interval_ms,
        100,
        3_600_000,
    )?;
    Ok(RevocationFeed {
        endpoint,
        poll_interval: Duration::from_millis(poll),
    })
}

pub(super) fn compile_limits(raw: &raw::RawLimits) -> Result<Limits, PolicyError> {
    let ctx = Ctx::top("limits");
    let bound = |name: &str, value: usize, min: u64, max: u64| {
        range(&ctx.sub(name), value as u64, min, max).map(|v| v as usize)
    };
    Ok(Limits {
        max_token_bytes: bound("max_token_bytes", raw.max_token_bytes, 256, 65_536)?,
        max_header_bytes: bound("max_header_bytes", raw.max_header_bytes, 256, 16_384)?,
        max_json_depth: bound("max_json_depth", raw.max_json_depth, 2, 32)?,
    })
}

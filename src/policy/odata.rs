//! The `odata` section: where the OData service starts, which navigation
//! properties lead where, and how large a `$batch` body may be inspected.

use super::raw::RawOData;
use super::{Ctx, PathCase, PolicyError, PolicyErrorKind, range};
use crate::odata::ODataPolicy;

/// Routes an OData-aware request can be checked against (one bit each).
pub(crate) const MAX_ODATA_ROUTES: usize = 128;

fn identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(super) fn compile(
    raw: &RawOData,
    path_case: PathCase,
    routes: usize,
) -> Result<ODataPolicy, PolicyError> {
    let ctx = Ctx::top("odata");
    if routes > MAX_ODATA_ROUTES {
        return Err(ctx.err(PolicyErrorKind::TooManyRoutes(MAX_ODATA_ROUTES)));
    }
    let root = &raw.service_root;
    if !root.starts_with('/')
        || !root.ends_with('/')
        || root.contains(|c: char| c.is_whitespace() || matches!(c, '?' | '#' | '%' | ';'))
    {
        return Err(ctx.sub("service_root").err(PolicyErrorKind::InvalidPath));
    }
    let fold = path_case == PathCase::Insensitive;
    let folded = |s: &str| {
        if fold {
            s.to_ascii_lowercase()
        } else {
            s.to_owned()
        }
    };
    let mut navigation = std::collections::HashMap::new();
    for (name, target) in &raw.navigation {
        let field = ctx.sub(&format!("navigation.{name}"));
        for n in [name, target] {
            if !identifier(n) {
                return Err(field.err(PolicyErrorKind::InvalidODataName(n.clone())));
            }
        }
        navigation.insert(folded(name), target.clone());
    }
    let max = range(
        &ctx.sub("max_batch_bytes"),
        raw.max_batch_bytes,
        1024,
        16 << 20,
    )?;
    Ok(ODataPolicy {
        service_root: folded(root),
        navigation,
        max_batch_bytes: usize::try_from(max).unwrap_or(usize::MAX),
        fold,
    })
}

//! The identity headers a policy names: each a valid, distinct lowercase
//! name, and what is stripped from every request.

use super::{Ctx, IdentityHeaders, PolicyError, PolicyErrorKind, raw};
use std::sync::Arc;

pub(super) fn header_name(ctx: &Ctx, name: &str) -> Result<String, PolicyError> {
    let ok = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ctx.err(PolicyErrorKind::InvalidHeaderName(name.to_owned())))
    }
}

/// Checks the `identity_headers` section.
pub(super) fn compile(raw: &raw::RawHeaders) -> Result<IdentityHeaders, PolicyError> {
    let ctx = Ctx::top("identity_headers");
    let mut strip: Vec<String> = Vec::new();
    let mut one = |name: &str, value: &Option<String>| -> Result<Option<Arc<str>>, PolicyError> {
        match value {
            None => Ok(None),
            Some(v) => {
                let fctx = ctx.sub(name);
                let v = header_name(&fctx, v)?;
                if strip.contains(&v) {
                    return Err(fctx.err(PolicyErrorKind::DuplicateHeaderName(v)));
                }
                let shared = Arc::from(v.as_str());
                strip.push(v);
                Ok(Some(shared))
            }
        }
    };
    let mut headers = IdentityHeaders {
        subject: one("subject", &raw.subject)?,
        user_id: one("user_id", &raw.user_id)?,
        client_id: one("client_id", &raw.client_id)?,
        db: one("db", &raw.db)?,
        scopes: one("scopes", &raw.scopes)?,
        token_kind: one("token_kind", &raw.token_kind)?,
        session_id: one("session_id", &raw.session_id)?,
        is_admin: one("is_admin", &raw.is_admin)?,
        user_type: one("user_type", &raw.user_type)?,
        strip: Arc::from(Vec::<String>::new()),
    };
    for (i, extra) in raw.also_strip.iter().enumerate() {
        let v = header_name(&ctx.sub(&format!("also_strip[{i}]")), extra)?;
        if ["authorization", "x-api-key", "api-key", "host"].contains(&v.as_str()) {
            return Err(ctx
                .sub(&format!("also_strip[{i}]"))
                .err(PolicyErrorKind::InvalidHeaderName(v)));
        }
        if !strip.contains(&v) {
            strip.push(v);
        }
    }
    headers.strip = strip.into();
    Ok(headers)
}

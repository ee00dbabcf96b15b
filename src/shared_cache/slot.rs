//! One shared-cache slot in bytes. Every first-seen token writes one, so the
//! form is binary (no JSON on that path): fixed-width numbers little-endian,
//! text as a `u32` length and its UTF-8. Reading checks everything it
//! rebuilds (lengths, UTF-8, scope syntax, header safety); anything off is
//! a miss, never a principal.
//!
//! ```text
//! hash[32] fresh_until_ms[8] stale_until_ms[8] has_principal[1]
//!   kind[1] is_admin[1] expires_at[8] vouched_at[8] scopes[text]
//!   present[1] field[text] for each present field, in `PrincipalText` order
//! ```

use crate::cache::TokenHash;
use crate::principal::{FIELDS, Principal, PrincipalText, TokenKind};
use crate::scope::ScopeSet;

/// A slot's content.
pub(super) struct Slot {
    /// Fresh until, Unix milliseconds.
    pub(super) fresh_until: u64,
    /// Served stale until, Unix milliseconds.
    pub(super) stale_until: u64,
    /// The principal; `None` records an inactive reference token.
    pub(super) principal: Option<Principal>,
}

/// The token hash and the two times: a shorter slot is no slot.
const HEAD: usize = 32 + 8 + 8;

fn text(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// A slot's bytes.
pub(super) fn encode(
    hash: &TokenHash,
    fresh_until: u64,
    stale_until: u64,
    principal: Option<&Principal>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(&fresh_until.to_le_bytes());
    out.extend_from_slice(&stale_until.to_le_bytes());
    let Some(p) = principal else {
        out.push(0);
        return out;
    };
    out.push(1);
    let kind = TokenKind::ALL
        .iter()
        .position(|k| *k == p.kind)
        .unwrap_or(0);
    out.push(u8::try_from(kind).unwrap_or(0));
    out.push(u8::from(p.is_admin));
    out.extend_from_slice(&p.expires_at.to_le_bytes());
    out.extend_from_slice(&p.vouched_at.to_le_bytes());
    text(&mut out, p.scopes.as_str());
    let fields = p.text().fields();
    let present = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_some())
        .fold(0u8, |bits, (i, _)| bits | 1 << i);
    out.push(present);
    for field in fields.into_iter().flatten() {
        text(&mut out, field);
    }
    out
}

/// The token hash and fresh-until time of a slot, without reading the
/// principal (what a writer compares against).
pub(super) fn peek(bytes: &[u8]) -> Option<(TokenHash, u64)> {
    let mut r = Reader(bytes);
    Some((TokenHash(r.array()?), r.u64()?))
}

/// The slot in `bytes` when it holds `hash`; `None` for another token's
/// slot, an empty one, or bytes that do not read back completely.
pub(super) fn decode(bytes: &[u8], hash: &TokenHash) -> Option<Slot> {
    if bytes.len() < HEAD || peek(bytes)?.0 != *hash {
        return None;
    }
    let mut r = Reader(bytes.get(32..)?);
    let (fresh_until, stale_until) = (r.u64()?, r.u64()?);
    let principal = match r.u8()? {
        0 => None,
        1 => Some(principal(&mut r)?),
        _ => return None,
    };
    r.0.is_empty().then_some(Slot {
        fresh_until,
        stale_until,
        principal,
    })
}

fn principal(r: &mut Reader<'_>) -> Option<Principal> {
    let kind = *TokenKind::ALL.get(usize::from(r.u8()?))?;
    let is_admin = match r.u8()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let (expires_at, vouched_at) = (r.u64()?, r.u64()?);
    let scopes = ScopeSet::parse(r.text()?).ok()?;
    let present = r.u8()?;
    if present & 1 == 0 {
        return None;
    }
    let mut values: [Option<&str>; FIELDS] = [None; FIELDS];
    for (i, value) in values.iter_mut().enumerate() {
        if present & (1 << i) != 0 {
            *value = Some(r.text()?);
        }
    }
    let text = PrincipalText::from_fields(values)?;
    let mut p = Principal::new(kind, &text, scopes, expires_at);
    p.is_admin = is_admin;
    p.vouched_at = vouched_at;
    p.is_header_safe().then_some(p)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = usize::try_from(u32::from_le_bytes(self.array()?)).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Principal {
        let text = PrincipalText {
            subject: "alice",
            user_id: Some("6f1e"),
            client_id: Some("app"),
            db: Some("E1"),
            sid: Some(""),
            jti: Some("J1"),
            user_type: Some("Üser"),
            jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
        };
        let mut p = Principal::new(
            TokenKind::User,
            &text,
            ScopeSet::parse("read w").unwrap(),
            9,
        );
        p.is_admin = true;
        p.vouched_at = 7;
        p
    }

    #[test]
    fn round_trips_every_field_and_an_inactive_entry() {
        let hash = TokenHash::of("t");
        let bytes = encode(&hash, 10, 20, Some(&full()));
        let slot = decode(&bytes, &hash).unwrap();
        assert_eq!((slot.fresh_until, slot.stale_until), (10, 20));
        assert_eq!(slot.principal.unwrap(), full());
        assert_eq!(peek(&bytes), Some((hash, 10)));
        let inactive = encode(&hash, 5, 5, None);
        assert!(decode(&inactive, &hash).unwrap().principal.is_none());
        assert!(decode(&bytes, &TokenHash::of("other")).is_none());
    }

    #[test]
    fn anything_that_does_not_read_back_completely_is_a_miss() {
        let hash = TokenHash::of("t");
        let bytes = encode(&hash, 10, 20, Some(&full()));
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], &hash).is_none(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &hash).is_none());
        // The principal flag, the kind and is_admin out of range.
        for (at, value) in [(48, 2), (49, 4), (50, 2)] {
            let mut bad = bytes.clone();
            bad[at] = value;
            assert!(decode(&bad, &hash).is_none(), "byte {at} = {value}");
        }
        // The subject's bit cleared, and a present field dropped (its text
        // is then left over).
        // After the presence byte: eight lengths and the fields' text.
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let fields_len = 8 * 4 + "alice6f1eappE1J1Üser".len() + jkt.len();
        let present_at = bytes.len() - fields_len - 1;
        assert_eq!(bytes[present_at], 0xFF);
        for value in [0xFE, 0x7F] {
            let mut bad = bytes.clone();
            bad[present_at] = value;
            assert!(decode(&bad, &hash).is_none());
        }
    }

    #[test]
    fn a_field_that_could_smuggle_a_header_or_a_bad_scope_is_a_miss() {
        let hash = TokenHash::of("t");
        let text = PrincipalText {
            subject: "alice\r\nx-erp-admin: true",
            ..PrincipalText::default()
        };
        let p = Principal::new(TokenKind::Pat, &text, ScopeSet::new(), 9);
        assert!(decode(&encode(&hash, 10, 20, Some(&p)), &hash).is_none());
        let mut bytes = encode(&hash, 10, 20, Some(&full()));
        // "read w" becomes "read\"w": not a scope token.
        let at = bytes.windows(6).position(|w| w == b"read w").unwrap();
        bytes[at + 4] = b'"';
        assert!(decode(&bytes, &hash).is_none());
    }
}

//! The proxy-wasm ABI's map serialisation (header maps crossing the
//! host/guest boundary): a count, then (key length, value length) pairs, then
//! NUL-terminated keys and values. Self-contained, so the fuzz target builds
//! it without the gateway's dependencies.

/// Serialises header pairs the way the ABI specifies: count, then
/// (key length, value length) pairs, then NUL-terminated keys and values.
pub fn encode_map(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// A little-endian u32 from exactly four bytes.
pub fn le_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(<[u8; 4]>::try_from(b).ok()?))
}

/// Header pairs as the ABI carries them.
pub type Pairs = Vec<(String, Vec<u8>)>;

/// Parses the ABI map encoding; `None` when it is malformed.
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let word = |at: usize| -> Option<usize> { le_u32(bytes.get(at..at + 4)?).map(|w| w as usize) };
    let count = word(0)?;
    if count > 10_000 {
        return None;
    }
    let mut lens = Vec::with_capacity(count);
    for i in 0..count {
        lens.push((word(4 + i * 8)?, word(8 + i * 8)?));
    }
    let mut at = 4 + count * 8;
    let mut out = Vec::with_capacity(count);
    for (kl, vl) in lens {
        let key = bytes.get(at..at.checked_add(kl)?)?;
        at += kl;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        let value = bytes.get(at..at.checked_add(vl)?)?;
        at += vl;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        out.push((String::from_utf8(key.to_vec()).ok()?, value.to_vec()));
    }
    Some(out)
}

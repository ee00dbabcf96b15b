//! The gateway's proxy-wasm map (de)serialisation: decoding arbitrary bytes
//! never panics, and whatever decodes encodes back to an equal map.

// The gateway's own source, so the target needs none of its dependencies;
// `le_u32` and `Pairs` serve the gateway's other code.
#[allow(dead_code)]
#[path = "../../host/gateway/src/map.rs"]
mod map;

/// One input: panics on a failed property, like the fuzz target.
pub fn run(data: &[u8]) {
    if let Some(pairs) = map::decode_map(data) {
        let encoded = map::encode_map(&pairs);
        assert_eq!(map::decode_map(&encoded), Some(pairs));
    }
}

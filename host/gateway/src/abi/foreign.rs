//! Foreign functions: Envoy's `verify_signature`.

use erpgate::adapters::foreign;
use wasmtime::Linker;

use super::codes::status;
use super::memory::{give, read};
use super::state::{C, HostState};

/// Envoy's `verify_signature`, natively (BoringSSL): `None` (`BAD_ARGUMENT`)
/// when the arguments do not decode or carry no usable key, as in Envoy.
pub fn verify_signature(args: &[u8]) -> Option<Vec<u8>> {
    use boring::hash::MessageDigest;
    use boring::pkey::PKey;
    use prost::Message;
    let args = foreign::VerifySignatureArguments::decode(args).ok()?;
    let key = if !args.public_key.is_empty() {
        PKey::public_key_from_der(&args.public_key).ok()?
    } else if !args.public_key_pem.is_empty() {
        PKey::public_key_from_pem(args.public_key_pem.as_bytes()).ok()?
    } else {
        return None;
    };
    let digest = match args.hash_function.as_str() {
        "sha1" => Some(MessageDigest::sha1()),
        "sha224" => Some(MessageDigest::sha224()),
        "sha256" => Some(MessageDigest::sha256()),
        "sha384" => Some(MessageDigest::sha384()),
        "sha512" => Some(MessageDigest::sha512()),
        _ => None,
    };
    let (result, error) = match digest {
        None => (false, format!("{} is not supported.", args.hash_function)),
        Some(md) => {
            let valid = boring::sign::Verifier::new(md, &key)
                .and_then(|mut v| v.verify_oneshot(&args.signature, &args.text))
                .unwrap_or(false);
            (
                valid,
                if valid {
                    String::new()
                } else {
                    "Failed to verify signature.".into()
                },
            )
        }
    };
    Some(foreign::VerifySignatureResult { result, error }.encode_to_vec())
}

/// Registers `proxy_call_foreign_function`.
pub(super) fn link_foreign(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = "env";
    linker.func_wrap(
        m,
        "proxy_call_foreign_function",
        |mut c: C<'_>, np: i32, nl: i32, ap: i32, al: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let (Some(name), Some(args)) = (read(&mut c, np, nl), read(&mut c, ap, al)) else {
                return status::BAD_ARGUMENT;
            };
            if name != foreign::VERIFY_SIGNATURE.as_bytes() || !c.data().verify_signature {
                return status::NOT_FOUND;
            }
            match verify_signature(&args) {
                Some(result) => {
                    c.data()
                        .shared
                        .signatures_verified
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    give(&mut c, &result, ret_ptr, ret_len)
                }
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    Ok(())
}

//! Human accounts: who may use which app, Argon2id password hashes, and
//! the cache that spares legacy Basic, which sends the password on every
//! call, an Argon2 run per request.

use std::collections::HashSet;
use std::sync::Mutex;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use erpgate_store::records::{TrustedApp, User};
use erpgate_store::secrets::random_hex;
use subtle::ConstantTimeEq as _;

/// The app's user-type gate (`InternalUsers` / `CommunityUsers`): whether
/// `user` may hold any credential of `app`. Interactive sign-in asks it.
pub fn may_sign_in(app: &TrustedApp, user: &User) -> bool {
    match user.user_type.as_str() {
        "InternalUser" => app.internal_users_allowed,
        "ExternalCommunityUser" => app.community_users_allowed,
        _ => false,
    }
}

/// Whether `user` may hold a credential of `app` that reaches the ERP API
/// as the user: the user-type gate, and an internal user (a community user
/// gets identity scopes only). The one rule every user-credential door asks:
/// PAT minting (the admin API, the CLI and the profile page), PAT
/// introspection, legacy Basic and ErpLogin.
pub fn may_use_api(app: &TrustedApp, user: &User) -> bool {
    may_sign_in(app, user) && user.user_type == "InternalUser"
}

/// Verifies a password against an Argon2id hash off the async threads, in
/// memory of its own (startup only: requests go through
/// [`PasswordGate`](crate::passwords::PasswordGate), which reuses its memory).
pub(crate) async fn password_ok(hash: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        verify_in(hash.as_deref(), password.as_bytes(), &mut Vec::new())
    })
    .await
    .unwrap_or(false)
}

/// Verifies `password` against the stored Argon2 hash using `memory` for
/// Argon2's blocks (grown when the hash asks for more, never shrunk), so a
/// verification allocates nothing once `memory` is warm: the allocator
/// cannot keep a 19 MiB block per thread that ever ran one. A missing hash
/// still costs one verification, so unknown users and wrong passwords take
/// the same time.
pub(crate) fn verify_in(stored: Option<&str>, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let dummy;
    let stored = match stored {
        Some(s) => s,
        None => {
            dummy = dummy_password_hash();
            &dummy
        }
    };
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    let Some(blocks) = memory.get_mut(..needed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, blocks)
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// An Argon2id hash of a random password nobody knows, made once.
fn dummy_password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_hex(32)).unwrap_or_default())
        .clone()
}

/// Hashes a password with Argon2id (human passwords only).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Digests of (app, login, password, stored hash) whose Argon2 check passed,
/// so legacy Basic, which sends the password on every call, pays for Argon2
/// once. Bounded: when full it starts over.
#[derive(Default)]
pub struct VerifiedPasswords(Mutex<HashSet<[u8; 32]>>);

impl VerifiedPasswords {
    /// Digests kept at most.
    const MAX: usize = 4096;

    pub(crate) fn contains(&self, digest: &[u8; 32]) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(digest))
    }

    pub(crate) fn insert(&self, digest: [u8; 32]) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= Self::MAX {
                set.clear();
            }
            set.insert(digest);
        }
    }
}

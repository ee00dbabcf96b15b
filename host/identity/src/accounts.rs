//! Human accounts: Argon2id password hashes, the failed-login limits, and
//! the cache that spares legacy Basic, which sends the password on every
//! call, an Argon2 run per request.

use std::collections::HashSet;
use std::sync::Mutex;

use erpgate_store::records::{TrustedApp, User};
use erpgate_store::secrets::random_hex;

/// Failed logins allowed per user name within the window.
pub const MAX_FAILURES_PER_USER: u32 = 5;
/// Failed logins allowed per client address within the window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// The throttling window.
pub const FAILURE_WINDOW_S: u64 = 900;

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

/// The failed-login counter of a user name.
pub(crate) fn throttle_key(login: &str) -> String {
    format!("user:{}", login.to_lowercase())
}

/// Verifies a password against an Argon2id hash off the async threads.
pub(crate) async fn password_ok(hash: Option<String>, password: String) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    tokio::task::spawn_blocking(move || {
        // A missing hash still costs one verification, so unknown users and
        // wrong passwords take the same time.
        let stored = hash.unwrap_or_else(dummy_password_hash);
        PasswordHash::new(&stored)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
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

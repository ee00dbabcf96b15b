//! The one door every human password goes through (the sign-in page,
//! legacy Basic and ErpLogin): failed-guess limits counted before Argon2
//! runs, a bound on how many Argon2 runs happen at once, and the client
//! address taken from a configured list of trusted proxies.
//!
//! The limits, per window of [`FAILURE_WINDOW_S`]:
//! - a user name from one client address: [`PAIR_LIMIT`] guesses. The
//!   attempt is counted before the password is checked, so parallel
//!   guesses cannot slip past the count; a success clears it.
//! - one client address, any user name: [`ADDRESS_LIMIT`] failures.
//! - a user name from every address together: [`USER_FREE`] guesses, then
//!   one guess per growing delay (1 s, 2 s, 4 s … up to [`MAX_DELAY_S`]).
//!   A delay, not a lockout: an attacker who knows a user name can slow
//!   that user's sign-in by seconds, never shut it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use erpgate_store::Store;
use erpgate_store::records::User;
use ipnet::IpNet;
use tokio::sync::Semaphore;

use crate::accounts::verify_in;

/// Guesses for one user name from one client address.
pub const PAIR_LIMIT: u32 = 5;
/// Failed guesses from one client address, any user name.
pub const ADDRESS_LIMIT: u32 = 20;
/// Guesses for one user name from all addresses before each needs a delay.
pub const USER_FREE: u32 = 10;
/// The longest delay between guesses for one user name.
pub const MAX_DELAY_S: u64 = 60;
/// The window the counters live in.
pub const FAILURE_WINDOW_S: u64 = 900;
/// How long a check waits for an Argon2 slot before it gives up.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// How a password check ended.
#[derive(Debug)]
pub enum PasswordOutcome {
    /// The password is the user's.
    Accepted(User),
    /// Unknown user or wrong password (counted).
    Refused,
    /// Over a limit: not checked. Try again after this many seconds.
    Throttled(u64),
    /// The store could not count the attempt, or no Argon2 slot freed in
    /// time: not checked (fail closed).
    Unavailable,
}

/// The counters, the Argon2 bound and the trusted proxies.
pub struct PasswordGate {
    store: Arc<dyn Store>,
    argon2: Semaphore,
    /// Argon2's working memory, one per permit of `argon2`, reused.
    memory: std::sync::Mutex<Vec<Vec<argon2::Block>>>,
    trusted_proxies: Vec<IpNet>,
}

impl PasswordGate {
    /// A gate over `store`'s counters, running at most `concurrent` Argon2
    /// verifications at once.
    pub fn new(store: Arc<dyn Store>, concurrent: usize, trusted_proxies: Vec<IpNet>) -> Self {
        let concurrent = concurrent.max(1);
        Self {
            store,
            argon2: Semaphore::new(concurrent),
            memory: std::sync::Mutex::new(vec![Vec::new(); concurrent]),
            trusted_proxies,
        }
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the rightmost `X-Forwarded-For` entry that is not one (each
    /// proxy appends the address it saw; everything left of the last
    /// untrusted one is the client's to write). `None` without a peer.
    pub fn client_address(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut address = peer?.ip();
        if !self.trusted(address) {
            return Some(address);
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Ok(hop) = hop.trim().parse::<IpAddr>() else {
                // An entry a proxy would not write: stop at the last sane one.
                break;
            };
            address = hop;
            if !self.trusted(hop) {
                break;
            }
        }
        Some(address)
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }

    /// Checks `password` for `login` from `address` under the limits.
    pub async fn check(
        &self,
        login: &str,
        password: &str,
        address: Option<IpAddr>,
        now: u64,
    ) -> PasswordOutcome {
        self.check_inner(login, None, password, address, now).await
    }

    /// [`Self::check`] for a caller that has already read the user
    /// (`None`: no such user), so the store is not asked twice.
    pub async fn check_user(
        &self,
        login: &str,
        user: Option<User>,
        password: &str,
        address: Option<IpAddr>,
        now: u64,
    ) -> PasswordOutcome {
        self.check_inner(login, Some(user), password, address, now)
            .await
    }

    async fn check_inner(
        &self,
        login: &str,
        preloaded: Option<Option<User>>,
        password: &str,
        address: Option<IpAddr>,
        now: u64,
    ) -> PasswordOutcome {
        let name = login.to_lowercase();
        let from = address.map_or_else(|| "-".to_owned(), |a| a.to_string());
        let pair_key = format!("pair:{name}|{from}");
        let user_key = format!("user:{name}");
        let address_key = format!("addr:{from}");
        if address.is_some() {
            match self.store.login_failures(&address_key, now).await {
                Ok(n) if n >= ADDRESS_LIMIT => return PasswordOutcome::Throttled(FAILURE_WINDOW_S),
                Ok(_) => {}
                Err(_) => return PasswordOutcome::Unavailable,
            }
        }
        // Counted before the check: parallel guesses each take a count.
        match self.count(&pair_key, FAILURE_WINDOW_S, now).await {
            Some(n) if n > PAIR_LIMIT => return PasswordOutcome::Throttled(FAILURE_WINDOW_S),
            Some(_) => {}
            None => return PasswordOutcome::Unavailable,
        }
        let Some(n) = self.count(&user_key, FAILURE_WINDOW_S, now).await else {
            return PasswordOutcome::Unavailable;
        };
        if n > USER_FREE {
            // One guess per delay: the first attempt of each delay takes it.
            let delay = 1u64
                .checked_shl(n.saturating_sub(USER_FREE + 1))
                .unwrap_or(MAX_DELAY_S)
                .min(MAX_DELAY_S);
            match self.count(&format!("hold:{name}"), delay, now).await {
                Some(1) => {}
                Some(_) => return PasswordOutcome::Throttled(delay),
                None => return PasswordOutcome::Unavailable,
            }
        }
        let user = match preloaded {
            Some(user) => user,
            None => match self.store.user(login).await {
                Ok(user) => user,
                Err(_) => return PasswordOutcome::Unavailable,
            },
        };
        let Ok(Ok(slot)) = tokio::time::timeout(QUEUE_WAIT, self.argon2.acquire()).await else {
            return PasswordOutcome::Unavailable;
        };
        metrics::counter!("erpgate_password_verifications_total").increment(1);
        // A user without a hash, or no user, still costs one Argon2 run.
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = self.verify(hash, password.to_owned()).await;
        drop(slot);
        match user {
            Some(user) if verified => {
                for key in [&pair_key, &user_key] {
                    if let Err(e) = self.store.clear_login_failures(key).await {
                        tracing::error!(error = %e, "could not clear failed logins");
                    }
                }
                PasswordOutcome::Accepted(user)
            }
            _ => {
                if address.is_some() {
                    self.count(&address_key, FAILURE_WINDOW_S, now).await;
                }
                PasswordOutcome::Refused
            }
        }
    }

    /// One Argon2 verification in pooled memory (the caller holds a permit,
    /// so a buffer is free).
    async fn verify(&self, hash: Option<String>, password: String) -> bool {
        let mut memory = self
            .memory
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        let Ok((verified, memory)) = tokio::task::spawn_blocking(move || {
            let verified = verify_in(hash.as_deref(), password.as_bytes(), &mut memory);
            (verified, memory)
        })
        .await
        else {
            return false;
        };
        if let Ok(mut pool) = self.memory.lock() {
            pool.push(memory);
        }
        verified
    }

    async fn count(&self, key: &str, window_s: u64, now: u64) -> Option<u32> {
        match self.store.add_login_failure(key, now, window_s).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::error!(error = %e, "could not count a login attempt");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use erpgate_store::MemoryStore;

    fn gate(trusted: &[&str]) -> PasswordGate {
        PasswordGate::new(
            Arc::new(MemoryStore::default()),
            1,
            trusted.iter().map(|t| t.parse().unwrap()).collect(),
        )
    }

    fn from(peer: &str, forwarded: &[&str]) -> Option<IpAddr> {
        let mut headers = HeaderMap::new();
        for f in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_str(f).unwrap());
        }
        gate(&["10.0.0.0/8", "127.0.0.1/32"]).client_address(Some(peer.parse().unwrap()), &headers)
    }

    /// A client that is not a trusted proxy cannot name another address:
    /// spoofing `X-Forwarded-For` would give every guess a fresh counter.
    #[test]
    fn only_trusted_proxies_name_the_client() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(from("203.0.113.9:1", &["198.51.100.1"]), ip("203.0.113.9"));
        assert_eq!(from("127.0.0.1:1", &[]), ip("127.0.0.1"));
        assert_eq!(from("127.0.0.1:1", &["198.51.100.1"]), ip("198.51.100.1"));
        // The rightmost untrusted hop: what the client wrote on the left is ignored.
        assert_eq!(
            from("127.0.0.1:1", &["1.1.1.1, 198.51.100.1, 10.1.2.3"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            from("10.0.0.2:1", &["1.1.1.1", "198.51.100.1, 10.0.0.7"]),
            ip("198.51.100.1")
        );
        // A hop no proxy would write stops the walk at the last sane one.
        assert_eq!(from("127.0.0.1:1", &["1.1.1.1, bogus"]), ip("127.0.0.1"));
        assert_eq!(gate(&[]).client_address(None, &HeaderMap::new()), None);
    }

    /// Past the free guesses for a user name, one guess per growing delay
    /// from every address together; a success clears the counts.
    #[tokio::test]
    async fn past_the_free_guesses_one_per_growing_delay() {
        let gate = gate(&[]);
        let mut outcomes = Vec::new();
        for i in 0..(USER_FREE + 3) {
            let address: IpAddr = format!("198.51.100.{i}").parse().unwrap();
            outcomes.push(gate.check("nobody", "guess", Some(address), 1000).await);
        }
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, PasswordOutcome::Refused))
            .count();
        // USER_FREE guesses, then the first of the 1 s delay; the rest wait.
        assert_eq!(refused, USER_FREE as usize + 1, "{outcomes:?}");
        assert!(matches!(
            outcomes.last(),
            Some(PasswordOutcome::Throttled(d)) if *d >= 1
        ));
        let later: IpAddr = "198.51.100.200".parse().unwrap();
        assert!(matches!(
            gate.check("nobody", "guess", Some(later), 1000 + MAX_DELAY_S)
                .await,
            PasswordOutcome::Refused
        ));
    }
}

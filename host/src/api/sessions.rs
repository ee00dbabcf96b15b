//! ERP sessions and license slots, as ERP.net's application server keeps
//! them: a session opens on the first API call with a credential (issuing a
//! token opens none), holds one license slot, slides closed after 20 idle
//! minutes, and for service identities also closes an hour after it opened.
//! A closed session reopens on the next call if a slot is free. Reserved
//! accounts always get a slot; everyone else shares the rest, first come,
//! first served. Sessions live in memory: a restart clears them, as in
//! ERP.net.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::keys::random_hex;

/// Sliding idle timeout.
pub const IDLE_TIMEOUT_S: u64 = 20 * 60;
/// Absolute lifetime of a service session.
pub const SERVICE_LIFETIME_S: u64 = 60 * 60;

/// What opened a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A user access token (keyed by `sid`).
    User,
    /// A client-credentials token (keyed by `jti`).
    Service,
    /// A personal access token (keyed by the token's hash).
    Pat,
    /// A service access token (keyed by the token's hash).
    Sat,
    /// HTTP Basic.
    Basic,
    /// ErpLogin (`ErpSession`).
    ErpLogin,
}

impl Origin {
    /// Service identities also have an absolute lifetime.
    fn is_service(self) -> bool {
        matches!(self, Origin::Service | Origin::Sat)
    }
}

/// One open session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiSession {
    /// Its id: the `ErpSession` value for ErpLogin, an opaque id otherwise.
    pub id: String,
    /// The identity it belongs to (`sid:…`, `jti:…`, `basic:…`, `erp:…`).
    #[serde(skip)]
    pub key: String,
    /// The ERP login it runs as.
    pub login: String,
    /// The trusted application, when known.
    pub client_id: Option<String>,
    /// What opened it.
    pub origin: Origin,
    /// Unix seconds.
    pub opened_at: u64,
    /// Unix seconds of the last call.
    pub last_seen: u64,
    /// When it closes regardless of use (service sessions), Unix seconds.
    pub closes_at: Option<u64>,
    /// Whether it holds a reserved account's guaranteed slot.
    pub reserved: bool,
}

impl ApiSession {
    /// A session opening now for an identity.
    pub fn open(who: &Identity, now: u64, reserved: bool) -> Self {
        Self {
            id: random_hex(16),
            key: who.key.clone(),
            login: who.login.clone(),
            client_id: who.client_id.clone(),
            origin: who.origin,
            opened_at: now,
            last_seen: now,
            closes_at: who
                .origin
                .is_service()
                .then(|| now.saturating_add(SERVICE_LIFETIME_S)),
            reserved,
        }
    }

    fn live(&self, now: u64) -> bool {
        now < self.last_seen.saturating_add(IDLE_TIMEOUT_S)
            && self.closes_at.is_none_or(|c| now < c)
    }
}

/// Why a session could not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Every shared slot is taken.
    #[error("MaximumLicenseCountExceeded")]
    MaximumLicenseCountExceeded,
}

/// Who is asking for a session.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The session key (see [`ApiSession::key`]).
    pub key: String,
    /// The ERP login.
    pub login: String,
    /// The app, when known.
    pub client_id: Option<String>,
    /// What is opening it.
    pub origin: Origin,
}

/// The license table.
pub struct Sessions {
    slots: usize,
    reserved: Vec<String>,
    open: Mutex<HashMap<String, ApiSession>>,
}

/// A snapshot for `erpgate sessions list` and the admin API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    /// License slots in all.
    pub slots: usize,
    /// Accounts always guaranteed one.
    pub reserved_accounts: Vec<String>,
    /// Slots in use.
    pub used: usize,
    /// Open sessions, oldest first.
    pub sessions: Vec<ApiSession>,
}

impl Sessions {
    /// A table of `slots`, `reserved` of whom are guaranteed.
    pub fn new(slots: usize, reserved: Vec<String>) -> Self {
        Self {
            slots,
            reserved,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The live session of an identity, touched; or a new one if a slot is
    /// free.
    pub fn enter(&self, who: &Identity, now: u64) -> Result<ApiSession, SessionError> {
        let Ok(mut open) = self.open.lock() else {
            return Err(SessionError::MaximumLicenseCountExceeded);
        };
        open.retain(|_, s| s.live(now));
        if let Some(session) = open.get_mut(&who.key) {
            session.last_seen = now;
            return Ok(session.clone());
        }
        let is_reserved = self.reserved.iter().any(|r| r == &who.login);
        let guaranteed = is_reserved && !open.values().any(|s| s.reserved && s.login == who.login);
        if !guaranteed {
            let shared_used = open.values().filter(|s| !s.reserved).count();
            let shared = self.slots.saturating_sub(self.reserved.len());
            if shared_used >= shared {
                return Err(SessionError::MaximumLicenseCountExceeded);
            }
        }
        let session = ApiSession::open(who, now, guaranteed);
        open.insert(who.key.clone(), session.clone());
        tracing::info!(origin = ?who.origin, login = %who.login, "ERP session opened");
        Ok(session)
    }

    /// The live session with this id (an `ErpSession` value), touched.
    pub fn resume(&self, id: &str, now: u64) -> Option<ApiSession> {
        let mut open = self.open.lock().ok()?;
        open.retain(|_, s| s.live(now));
        let session = open.values_mut().find(|s| s.id == id)?;
        session.last_seen = now;
        Some(session.clone())
    }

    /// Closes the session of an identity; its slot is free at once.
    pub fn close_key(&self, key: &str) -> bool {
        self.open
            .lock()
            .is_ok_and(|mut open| open.remove(key).is_some())
    }

    /// Closes a session by id.
    pub fn close_id(&self, id: &str) -> bool {
        self.open.lock().is_ok_and(|mut open| {
            let before = open.len();
            open.retain(|_, s| s.id != id);
            open.len() < before
        })
    }

    /// The table as it stands.
    pub fn table(&self, now: u64) -> Table {
        let mut sessions: Vec<ApiSession> = self
            .open
            .lock()
            .map(|mut open| {
                open.retain(|_, s| s.live(now));
                open.values().cloned().collect()
            })
            .unwrap_or_default();
        sessions.sort_by_key(|s| (s.opened_at, s.id.clone()));
        Table {
            slots: self.slots,
            reserved_accounts: self.reserved.clone(),
            used: sessions.len(),
            sessions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(key: &str, login: &str, origin: Origin) -> Identity {
        Identity {
            key: key.into(),
            login: login.into(),
            client_id: None,
            origin,
        }
    }

    #[test]
    fn slots_reserved_seats_and_timeouts() {
        // Three slots, one reserved for admin: two shared.
        let table = Sessions::new(3, vec!["admin".into()]);
        let a = table
            .enter(&who("sid:A", "alice", Origin::User), 0)
            .unwrap();
        assert_eq!(
            table
                .enter(&who("sid:A", "alice", Origin::User), 10)
                .unwrap()
                .id,
            a.id,
            "same identity, same session"
        );
        table
            .enter(&who("jti:S", "svc", Origin::Service), 0)
            .unwrap();
        assert_eq!(
            table
                .enter(&who("sid:B", "bob", Origin::User), 0)
                .unwrap_err(),
            SessionError::MaximumLicenseCountExceeded
        );
        // The reserved account gets in although the shared slots are full…
        let r = table
            .enter(&who("sid:R", "admin", Origin::User), 0)
            .unwrap();
        assert!(r.reserved);
        // …but a second session of admin competes for the shared ones.
        assert!(
            table
                .enter(&who("sid:R2", "admin", Origin::User), 0)
                .is_err()
        );
        // Sliding: alice idles out after 20 minutes; touching resets it.
        table
            .enter(&who("sid:A", "alice", Origin::User), 1000)
            .unwrap();
        let open = |t: u64| table.table(t).sessions.iter().any(|s| s.key == "sid:A");
        assert!(open(1000 + IDLE_TIMEOUT_S - 1));
        assert!(!open(1000 + IDLE_TIMEOUT_S));
        // Absolute: the service session closes after an hour even when busy.
        for t in (0..SERVICE_LIFETIME_S).step_by(600) {
            table
                .enter(&who("jti:S", "svc", Origin::Service), t)
                .unwrap();
        }
        assert!(
            !table
                .table(SERVICE_LIFETIME_S)
                .sessions
                .iter()
                .any(|s| s.key == "jti:S")
        );
        // A closed session frees its slot at once.
        let now = SERVICE_LIFETIME_S;
        table
            .enter(&who("sid:B", "bob", Origin::User), now)
            .unwrap();
        table
            .enter(&who("sid:C", "carol", Origin::User), now)
            .unwrap();
        assert!(
            table
                .enter(&who("sid:D", "dave", Origin::User), now)
                .is_err()
        );
        assert!(table.close_key("sid:B"));
        table
            .enter(&who("sid:D", "dave", Origin::User), now)
            .unwrap();
        assert_eq!(table.table(now).used, 2, "carol and dave");
    }
}

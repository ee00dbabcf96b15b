//! ERP sessions and license slots, as ERP.net's application server keeps
//! them: a session opens on the first API call with a credential (issuing a
//! token opens none), holds one license slot, slides closed after 20 idle
//! minutes, and for service identities also closes an hour after it opened.
//! A closed session reopens on the next call if a slot is free. Reserved
//! accounts always get a slot; everyone else shares the rest, first come,
//! first served. The table lives in the store, so replicas count the same
//! slots (the store takes each slot under a lock); sessions therefore
//! outlive a host restart and close by their timeouts, where a restarted
//! ERP.net application server forgets them. The rules themselves are
//! [`License::admit`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use erpgate_store::Store;
pub use erpgate_store::records::{ApiSession, IDLE_TIMEOUT_S, License, Origin, SERVICE_LIFETIME_S};

/// Why a session could not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Every shared slot is taken.
    #[error("MaximumLicenseCountExceeded")]
    MaximumLicenseCountExceeded,
    /// The license table could not be read or written: fail closed.
    #[error("the license table is unavailable")]
    Unavailable,
}

/// Who is asking for a session.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The session key (see [`ApiSession::key`]).
    pub key: String,
    /// The ERP login.
    pub login: String,
    /// The app, when known.
    pub client_id: Option<String>,
    /// What is opening it.
    pub origin: Origin,
}

impl Holder {
    /// A new session of this identity, opening at `now`.
    pub fn session(&self, now: u64) -> ApiSession {
        ApiSession::open(
            &self.key,
            &self.login,
            self.client_id.clone(),
            self.origin,
            now,
        )
    }
}

/// The license table, kept in the store so that every host replica counts
/// the same slots.
pub struct Sessions {
    license: License,
    store: Arc<dyn Store>,
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
    /// The table of `license`, kept in `store`.
    pub fn new(license: License, store: Arc<dyn Store>) -> Self {
        Self { license, store }
    }

    /// The live session of an identity, touched; or a new one if a slot is
    /// free.
    pub async fn enter(&self, who: &Holder, now: u64) -> Result<ApiSession, SessionError> {
        let candidate = who.session(now);
        match self
            .store
            .enter_api_session(&candidate, &self.license, now)
            .await
        {
            Ok(Some(session)) => {
                if session.id == candidate.id {
                    tracing::info!(origin = ?who.origin, login = %who.login, "ERP session opened");
                }
                Ok(session)
            }
            Ok(None) => Err(SessionError::MaximumLicenseCountExceeded),
            Err(e) => {
                tracing::warn!(error = %e, "license table unavailable");
                Err(SessionError::Unavailable)
            }
        }
    }

    /// The live session with this id (an `ErpSession` value), touched.
    pub async fn resume(&self, id: &str, now: u64) -> Result<Option<ApiSession>, SessionError> {
        // Session ids are 32 uppercase hex digits: anything else names no
        // session, and costs no store call.
        if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
            return Ok(None);
        }
        self.store.resume_api_session(id, now).await.map_err(|e| {
            tracing::warn!(error = %e, "license table unavailable");
            SessionError::Unavailable
        })
    }

    /// Closes a session by identity key or id; its slot is free at once.
    pub async fn close(&self, key_or_id: &str) -> Result<bool, SessionError> {
        self.store.close_api_session(key_or_id).await.map_err(|e| {
            tracing::warn!(error = %e, "license table unavailable");
            SessionError::Unavailable
        })
    }

    /// The table as it stands.
    pub async fn table(&self, now: u64) -> Result<Table, SessionError> {
        let sessions = self.store.api_sessions(now).await.map_err(|e| {
            tracing::warn!(error = %e, "license table unavailable");
            SessionError::Unavailable
        })?;
        Ok(Table {
            slots: self.license.slots,
            reserved_accounts: self.license.reserved_accounts.clone(),
            used: sessions.len(),
            sessions,
        })
    }
}

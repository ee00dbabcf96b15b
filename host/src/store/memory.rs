//! An in-memory store for unit tests. Same semantics as SQLite, no durability.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use erpgate::revocation::{RevocationEvent, RevocationKind};

use super::{Store, StoreError, StoreResult, TokenContext};
use crate::model::{FeedRow, ReferenceToken, SigningKeyRecord, TrustedApp, User};

#[derive(Default)]
struct Inner {
    apps: BTreeMap<String, TrustedApp>,
    users: BTreeMap<String, User>,
    keys: Vec<SigningKeyRecord>,
    tokens: BTreeMap<String, ReferenceToken>,
    jti: BTreeMap<String, u64>,
    feed: BTreeMap<u64, RevocationEvent>,
    next_seq: u64,
}

impl Inner {
    fn push_feed(&mut self, kind: RevocationKind, value: &str, expires_at: u64) {
        self.next_seq += 1;
        self.feed.insert(
            self.next_seq,
            RevocationEvent {
                kind,
                value: value.to_owned(),
                expires_at,
            },
        );
    }
}

/// A store that lives and dies with the process.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn app(&self, client_id: &str) -> StoreResult<Option<TrustedApp>> {
        Ok(self.lock()?.apps.get(client_id).cloned())
    }
    async fn apps(&self) -> StoreResult<Vec<TrustedApp>> {
        Ok(self.lock()?.apps.values().cloned().collect())
    }
    async fn insert_app(&self, app: &TrustedApp) -> StoreResult<()> {
        let mut inner = self.lock()?;
        if inner.apps.contains_key(&app.client_id) {
            return Err(StoreError::Conflict(app.client_id.clone()));
        }
        inner.apps.insert(app.client_id.clone(), app.clone());
        Ok(())
    }
    async fn set_app_enabled(&self, client_id: &str, enabled: bool) -> StoreResult<bool> {
        Ok(self
            .lock()?
            .apps
            .get_mut(client_id)
            .map(|a| a.enabled = enabled)
            .is_some())
    }
    async fn set_app_secret_hash(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        Ok(self
            .lock()?
            .apps
            .get_mut(client_id)
            .map(|a| a.secret_hash = Some(secret_hash.to_owned()))
            .is_some())
    }
    async fn user(&self, login: &str) -> StoreResult<Option<User>> {
        Ok(self.lock()?.users.get(login).cloned())
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        Ok(self.lock()?.users.values().cloned().collect())
    }
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let mut inner = self.lock()?;
        if inner.users.contains_key(&user.login) {
            return Err(StoreError::Conflict(user.login.clone()));
        }
        inner.users.insert(user.login.clone(), user.clone());
        Ok(())
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let mut keys = self.lock()?.keys.clone();
        // Newest first; among equal times the later insertion first, as SQLite orders.
        keys.reverse();
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(keys)
    }
    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        if inner.keys.is_empty() {
            inner.keys.push(key.clone());
            Ok(true)
        } else {
            Ok(false)
        }
    }
    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        retire_old_at: u64,
    ) -> StoreResult<()> {
        let mut inner = self.lock()?;
        for k in inner.keys.iter_mut().filter(|k| k.retire_at.is_none()) {
            k.retire_at = Some(retire_old_at);
        }
        inner.keys.push(key.clone());
        Ok(())
    }
    async fn insert_reference_token(&self, token: &ReferenceToken) -> StoreResult<()> {
        let mut inner = self.lock()?;
        if inner.tokens.contains_key(&token.hash) || inner.tokens.values().any(|t| t.id == token.id)
        {
            return Err(StoreError::Conflict(token.id.clone()));
        }
        inner.tokens.insert(token.hash.clone(), token.clone());
        Ok(())
    }
    async fn reference_token(&self, hash: &str) -> StoreResult<Option<ReferenceToken>> {
        Ok(self.lock()?.tokens.get(hash).cloned())
    }
    async fn reference_token_context(&self, hash: &str) -> StoreResult<Option<TokenContext>> {
        let inner = self.lock()?;
        Ok(inner.tokens.get(hash).map(|t| TokenContext {
            token: t.clone(),
            app: inner.apps.get(&t.client_id).cloned(),
            user: inner.users.get(&t.subject).cloned(),
        }))
    }
    async fn reference_tokens(&self) -> StoreResult<Vec<ReferenceToken>> {
        let mut all: Vec<ReferenceToken> = self.lock()?.tokens.values().cloned().collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }
    async fn revoke_reference_token(
        &self,
        hash_or_id: &str,
        now: u64,
    ) -> StoreResult<Option<ReferenceToken>> {
        let mut inner = self.lock()?;
        let Some(token) = inner
            .tokens
            .values_mut()
            .find(|t| (t.hash == hash_or_id || t.id == hash_or_id) && t.revoked_at.is_none())
        else {
            return Ok(None);
        };
        token.revoked_at = Some(now);
        let token = token.clone();
        inner.push_feed(RevocationKind::TokenSha256, &token.hash, token.expires_at);
        Ok(Some(token))
    }
    async fn record_token_use(&self, uses: &[(String, u64)]) -> StoreResult<()> {
        let mut inner = self.lock()?;
        for (hash, at) in uses {
            if let Some(t) = inner.tokens.get_mut(hash) {
                t.last_used_at = Some(t.last_used_at.map_or(*at, |prev| prev.max(*at)));
            }
        }
        Ok(())
    }
    async fn revoke_jti(&self, jti: &str, expires_at: u64, _now: u64) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        if inner.jti.contains_key(jti) {
            return Ok(false);
        }
        inner.jti.insert(jti.to_owned(), expires_at);
        inner.push_feed(RevocationKind::Jti, jti, expires_at);
        Ok(true)
    }
    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        Ok(self.lock()?.jti.contains_key(jti))
    }
    async fn feed(&self, cursor: u64, limit: usize) -> StoreResult<Vec<FeedRow>> {
        Ok(self
            .lock()?
            .feed
            .range(cursor.saturating_add(1)..)
            .take(limit)
            .map(|(seq, event)| FeedRow {
                seq: *seq,
                event: event.clone(),
            })
            .collect())
    }
    async fn purge_expired(&self, now: u64, batch: usize) -> StoreResult<usize> {
        let mut inner = self.lock()?;
        let tokens: Vec<String> = inner
            .tokens
            .values()
            .filter(|t| t.expires_at < now)
            .take(batch)
            .map(|t| t.hash.clone())
            .collect();
        let jtis: Vec<String> = inner
            .jti
            .iter()
            .filter(|(_, e)| **e < now)
            .take(batch)
            .map(|(j, _)| j.clone())
            .collect();
        let events: Vec<u64> = inner
            .feed
            .iter()
            .filter(|(_, e)| e.expires_at < now)
            .take(batch)
            .map(|(s, _)| *s)
            .collect();
        let count = tokens.len() + jtis.len() + events.len();
        for h in tokens {
            inner.tokens.remove(&h);
        }
        for j in jtis {
            inner.jti.remove(&j);
        }
        for s in events {
            inner.feed.remove(&s);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        super::super::conformance::run(&super::MemoryStore::new()).await;
    }
}

//! An in-memory store for unit tests. Same semantics as SQLite, no durability.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use erpgate::revocation::{RevocationEvent, RevocationKind};

use super::{Store, StoreError, StoreResult, TokenContext};
use crate::records::{
    ApiSession, AuthCode, Consent, FeedRow, IdentitySession, License, Redemption, ReferenceToken,
    RefreshToken, SigningKeyRecord, TrustedApp, User,
};

#[derive(Default)]
struct Tables {
    apps: BTreeMap<String, TrustedApp>,
    users: BTreeMap<String, User>,
    keys: Vec<SigningKeyRecord>,
    tokens: BTreeMap<String, ReferenceToken>,
    jti: BTreeMap<String, u64>,
    feed: BTreeMap<u64, RevocationEvent>,
    next_seq: u64,
    sessions: BTreeMap<String, IdentitySession>,
    /// hash → (code, consumed).
    codes: BTreeMap<String, (AuthCode, bool)>,
    /// hash → (token, rotated or revoked).
    /// Each token with when it died (rotated at that time, or `Some(0)`:
    /// killed), `None` while live.
    refresh: BTreeMap<String, (RefreshToken, Option<u64>)>,
    /// A rotated refresh token's successor: parent hash → child hash.
    successors: BTreeMap<String, String>,
    /// grant id → [(jti, expires_at)].
    grant_jtis: BTreeMap<String, Vec<(String, u64)>>,
    /// (login, client_id) → consent.
    consents: BTreeMap<(String, String), Consent>,
    /// (entity set, id) → JSON.
    records: BTreeMap<(String, String), String>,
    /// ERP sessions by identity key.
    api_sessions: BTreeMap<String, ApiSession>,
    secrets: BTreeMap<String, String>,
    /// id → (JSON, expires_at).
    signins: BTreeMap<String, (String, u64)>,
    /// key → (count, window end).
    failures: BTreeMap<String, (u32, u64)>,
    /// grant id → kept until.
    revoked_grants: BTreeMap<String, u64>,
}

impl Tables {
    /// Kills refresh tokens matching `pred`; returns how many were live.
    fn kill_refresh(&mut self, pred: impl Fn(&RefreshToken) -> bool) -> usize {
        let mut killed = 0;
        for (token, dead) in self.refresh.values_mut() {
            if dead.is_none() && pred(token) {
                *dead = Some(0);
                killed += 1;
            }
        }
        killed
    }

    fn push_feed(&mut self, kind: RevocationKind, value: &str, expires_at: u64) {
        self.next_seq += 1;
        self.feed.insert(
            self.next_seq,
            RevocationEvent {
                kind,
                value: value.to_owned(),
                issued_before: None,
                expires_at,
            },
        );
    }

    fn push_event(&mut self, event: &RevocationEvent) {
        self.next_seq += 1;
        self.feed.insert(self.next_seq, event.clone());
    }
}

/// A store that lives and dies with the process.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, Tables>> {
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
        let mut inner = self.lock()?;
        let found = inner
            .apps
            .get_mut(client_id)
            .map(|a| a.enabled = enabled)
            .is_some();
        if found && !enabled {
            inner.kill_refresh(|t| t.basis.client_id == client_id);
        }
        Ok(found)
    }
    async fn delete_app(&self, client_id: &str, now: u64) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        if inner.apps.remove(client_id).is_none() {
            return Ok(false);
        }
        inner.kill_refresh(|t| t.basis.client_id == client_id);
        for token in inner.tokens.values_mut() {
            if token.client_id == client_id && token.revoked_at.is_none() {
                token.revoked_at = Some(now);
            }
        }
        inner.consents.retain(|(_, app), _| app != client_id);
        Ok(true)
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
    async fn update_app(&self, app: &TrustedApp) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        let Some(stored) = inner.apps.get_mut(&app.client_id) else {
            return Ok(false);
        };
        *stored = TrustedApp {
            created_at: stored.created_at,
            ..app.clone()
        };
        if !app.enabled {
            inner.kill_refresh(|t| t.basis.client_id == app.client_id);
        }
        Ok(true)
    }
    async fn update_user_profile(&self, user: &User) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        let Some(stored) = inner.users.get_mut(&user.login) else {
            return Ok(false);
        };
        stored.name.clone_from(&user.name);
        stored.email.clone_from(&user.email);
        stored.user_type.clone_from(&user.user_type);
        stored.is_admin = user.is_admin;
        stored.locale.clone_from(&user.locale);
        Ok(true)
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
    async fn publish_revocation(&self, event: &RevocationEvent) -> StoreResult<()> {
        self.lock()?.push_event(event);
        Ok(())
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
    async fn insert_session(&self, session: &IdentitySession) -> StoreResult<()> {
        let mut inner = self.lock()?;
        if inner.sessions.contains_key(&session.sid) {
            return Err(StoreError::Conflict(session.sid.clone()));
        }
        inner.sessions.insert(session.sid.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, sid: &str) -> StoreResult<Option<IdentitySession>> {
        Ok(self.lock()?.sessions.get(sid).cloned())
    }

    async fn reauthenticate_session(&self, sid: &str, auth_time: u64) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        match inner.sessions.get_mut(sid) {
            Some(s) if s.ended_at.is_none() => {
                s.auth_time = auth_time;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn expired_sessions(&self, auth_before: u64, limit: usize) -> StoreResult<Vec<String>> {
        let inner = self.lock()?;
        let mut found: Vec<(u64, String)> = inner
            .sessions
            .values()
            .filter(|s| s.ended_at.is_none() && s.auth_time < auth_before)
            .map(|s| (s.auth_time, s.sid.clone()))
            .collect();
        found.sort();
        Ok(found.into_iter().take(limit).map(|(_, sid)| sid).collect())
    }
    async fn end_session(&self, sid: &str, now: u64, event_expires_at: u64) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        match inner.sessions.get_mut(sid) {
            Some(session) if session.ended_at.is_none() => session.ended_at = Some(now),
            _ => return Ok(false),
        }
        inner.kill_refresh(|t| t.basis.sid == sid);
        inner.push_feed(RevocationKind::Sid, sid, event_expires_at);
        Ok(true)
    }

    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()> {
        let mut inner = self.lock()?;
        if inner.codes.contains_key(&code.hash) {
            return Err(StoreError::Conflict("authorization code".into()));
        }
        inner.codes.insert(code.hash.clone(), (code.clone(), false));
        Ok(())
    }

    async fn redeem_auth_code(&self, hash: &str, _now: u64) -> StoreResult<Redemption<AuthCode>> {
        let mut inner = self.lock()?;
        Ok(match inner.codes.get_mut(hash) {
            None => Redemption::Unknown,
            Some((code, true)) => Redemption::Replayed(code.clone()),
            Some((code, used)) => {
                *used = true;
                Redemption::Fresh(code.clone())
            }
        })
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        if inner.refresh.contains_key(&token.hash) {
            return Err(StoreError::Conflict("refresh token".into()));
        }
        if inner.revoked_grants.contains_key(&token.basis.grant_id) {
            return Ok(false);
        }
        inner
            .refresh
            .insert(token.hash.clone(), (token.clone(), None));
        Ok(true)
    }

    async fn refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshToken>> {
        Ok(self.lock()?.refresh.get(hash).map(|(t, _)| t.clone()))
    }

    async fn rotate_refresh_token(
        &self,
        hash: &str,
        next_hash: &str,
        now: u64,
        reuse_since: Option<u64>,
    ) -> StoreResult<Redemption<RefreshToken>> {
        let mut inner = self.lock()?;
        if inner.refresh.contains_key(next_hash) {
            return Err(StoreError::Conflict("refresh token".into()));
        }
        let old = match inner.refresh.get_mut(hash) {
            None => return Ok(Redemption::Unknown),
            Some((token, None)) => {
                let old = token.clone();
                inner
                    .refresh
                    .insert(hash.to_owned(), (old.clone(), Some(now)));
                old
            }
            Some((token, Some(rotated_at))) => {
                let (old, rotated_at) = (token.clone(), *rotated_at);
                let successor = inner
                    .successors
                    .get(hash)
                    .filter(|_| reuse_since.is_some_and(|since| rotated_at >= since))
                    .cloned();
                match successor.and_then(|s| inner.refresh.get_mut(&s)) {
                    // Killed, not rotated: never reused in turn.
                    Some((_, dead @ None)) => {
                        *dead = Some(0);
                        old
                    }
                    _ => return Ok(Redemption::Replayed(old)),
                }
            }
        };
        let next = RefreshToken {
            hash: next_hash.to_owned(),
            created_at: now,
            ..old.clone()
        };
        inner.successors.insert(hash.to_owned(), next.hash.clone());
        inner.refresh.insert(next.hash.clone(), (next, None));
        Ok(Redemption::Fresh(old))
    }

    async fn record_grant_jti(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        if inner.revoked_grants.contains_key(grant_id) {
            if !inner.jti.contains_key(jti) {
                inner.jti.insert(jti.to_owned(), expires_at);
                inner.push_feed(RevocationKind::Jti, jti, expires_at);
            }
            return Ok(false);
        }
        inner
            .grant_jtis
            .entry(grant_id.to_owned())
            .or_default()
            .push((jti.to_owned(), expires_at));
        Ok(true)
    }

    async fn revoke_grant(&self, grant_id: &str, now: u64) -> StoreResult<usize> {
        let mut inner = self.lock()?;
        inner.revoked_grants.insert(
            grant_id.to_owned(),
            now.saturating_add(super::REVOKED_GRANT_KEPT_S),
        );
        let mut count = inner.kill_refresh(|t| t.basis.grant_id == grant_id);
        for (jti, expires_at) in inner.grant_jtis.remove(grant_id).unwrap_or_default() {
            if expires_at > now && !inner.jti.contains_key(&jti) {
                inner.jti.insert(jti.clone(), expires_at);
                inner.push_feed(RevocationKind::Jti, &jti, expires_at);
                count += 1;
            }
        }
        Ok(count)
    }

    async fn set_password_hash(
        &self,
        login: &str,
        hash: &str,
        now: u64,
        event_expires_at: u64,
    ) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        let Some(user) = inner.users.get_mut(login) else {
            return Ok(false);
        };
        user.password_hash = Some(hash.to_owned());
        inner.kill_refresh(|t| t.basis.login == login);
        let mut ended = Vec::new();
        for session in inner.sessions.values_mut() {
            if session.login == login && session.ended_at.is_none() {
                session.ended_at = Some(now);
                ended.push(session.sid.clone());
            }
        }
        for sid in ended {
            inner.push_feed(RevocationKind::Sid, &sid, event_expires_at);
        }
        Ok(true)
    }

    async fn consent(&self, login: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        Ok(self
            .lock()?
            .consents
            .get(&(login.to_owned(), client_id.to_owned()))
            .cloned())
    }

    async fn consents_of(&self, login: &str) -> StoreResult<Vec<Consent>> {
        Ok(self
            .lock()?
            .consents
            .values()
            .filter(|c| c.login == login)
            .cloned()
            .collect())
    }

    async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
        self.lock()?.consents.insert(
            (consent.login.clone(), consent.client_id.clone()),
            consent.clone(),
        );
        Ok(())
    }

    async fn revoke_consent(&self, login: &str, client_id: &str, _now: u64) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        inner.kill_refresh(|t| t.basis.login == login && t.basis.client_id == client_id);
        Ok(inner
            .consents
            .remove(&(login.to_owned(), client_id.to_owned()))
            .is_some())
    }

    async fn records(&self, entity_set: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .lock()?
            .records
            .iter()
            .filter(|((set, _), _)| set == entity_set)
            .map(|((_, id), json)| (id.clone(), json.clone()))
            .collect())
    }

    async fn record(&self, entity_set: &str, id: &str) -> StoreResult<Option<String>> {
        Ok(self
            .lock()?
            .records
            .get(&(entity_set.to_owned(), id.to_owned()))
            .cloned())
    }

    async fn insert_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<()> {
        let mut inner = self.lock()?;
        let key = (entity_set.to_owned(), id.to_owned());
        if inner.records.contains_key(&key) {
            return Err(StoreError::Conflict(id.to_owned()));
        }
        inner.records.insert(key, json.to_owned());
        Ok(())
    }

    async fn update_record(&self, entity_set: &str, id: &str, json: &str) -> StoreResult<bool> {
        Ok(self
            .lock()?
            .records
            .get_mut(&(entity_set.to_owned(), id.to_owned()))
            .map(|slot| *slot = json.to_owned())
            .is_some())
    }

    async fn delete_record(&self, entity_set: &str, id: &str) -> StoreResult<bool> {
        Ok(self
            .lock()?
            .records
            .remove(&(entity_set.to_owned(), id.to_owned()))
            .is_some())
    }

    async fn enter_api_session(
        &self,
        candidate: &ApiSession,
        license: &License,
        now: u64,
    ) -> StoreResult<Option<ApiSession>> {
        let mut inner = self.lock()?;
        inner.api_sessions.retain(|_, s| now < s.expires_at());
        if let Some(open) = inner.api_sessions.get_mut(&candidate.key) {
            open.touch(now);
            return Ok(Some(open.clone()));
        }
        let live: Vec<ApiSession> = inner.api_sessions.values().cloned().collect();
        let Some(reserved) = license.admit(&live, candidate) else {
            return Ok(None);
        };
        let session = ApiSession {
            reserved,
            ..candidate.clone()
        };
        inner
            .api_sessions
            .insert(session.key.clone(), session.clone());
        Ok(Some(session))
    }

    async fn resume_api_session(&self, id: &str, now: u64) -> StoreResult<Option<ApiSession>> {
        let mut inner = self.lock()?;
        Ok(inner
            .api_sessions
            .values_mut()
            .find(|s| s.id == id && now < s.expires_at())
            .map(|s| {
                s.touch(now);
                s.clone()
            }))
    }

    async fn close_api_session(&self, key_or_id: &str) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        let before = inner.api_sessions.len();
        inner
            .api_sessions
            .retain(|key, s| key != key_or_id && s.id != key_or_id);
        Ok(inner.api_sessions.len() < before)
    }

    async fn api_sessions(&self, now: u64) -> StoreResult<Vec<ApiSession>> {
        let inner = self.lock()?;
        let mut live: Vec<ApiSession> = inner
            .api_sessions
            .values()
            .filter(|s| now < s.expires_at())
            .cloned()
            .collect();
        live.sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
        Ok(live)
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let mut inner = self.lock()?;
        Ok(inner
            .secrets
            .entry(name.to_owned())
            .or_insert_with(|| candidate.to_owned())
            .clone())
    }

    async fn put_signin(&self, id: &str, json: &str, expires_at: u64) -> StoreResult<()> {
        self.lock()?
            .signins
            .insert(id.to_owned(), (json.to_owned(), expires_at));
        Ok(())
    }

    async fn signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        Ok(self
            .lock()?
            .signins
            .get(id)
            .filter(|(_, expires_at)| now < *expires_at)
            .map(|(json, _)| json.clone()))
    }

    async fn take_signin(&self, id: &str, now: u64) -> StoreResult<Option<String>> {
        Ok(self
            .lock()?
            .signins
            .remove(id)
            .filter(|(_, expires_at)| now < *expires_at)
            .map(|(json, _)| json))
    }

    async fn add_login_failure(&self, key: &str, now: u64, window_s: u64) -> StoreResult<u32> {
        let mut inner = self.lock()?;
        let entry = inner
            .failures
            .entry(key.to_owned())
            .or_insert((0, now.saturating_add(window_s)));
        if entry.1 <= now {
            *entry = (0, now.saturating_add(window_s));
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(entry.0)
    }

    async fn login_failures(&self, key: &str, now: u64) -> StoreResult<u32> {
        Ok(self
            .lock()?
            .failures
            .get(key)
            .filter(|(_, expires_at)| now < *expires_at)
            .map_or(0, |(n, _)| *n))
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        self.lock()?.failures.remove(key);
        Ok(())
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> StoreResult<usize> {
        let mut inner = self.lock()?;
        let inner = &mut *inner;
        let purged = purge(&mut inner.codes, batch, |(c, _)| c.expires_at < now)
            + purge(&mut inner.refresh, batch, |(t, _)| t.expires_at < now)
            + purge(&mut inner.tokens, batch, |t| t.expires_at < now)
            + purge(&mut inner.jti, batch, |e| *e < now)
            + purge(&mut inner.feed, batch, |e| e.expires_at < now)
            + purge(&mut inner.api_sessions, batch, |s| s.expires_at() < now)
            + purge(&mut inner.signins, batch, |(_, e)| *e < now)
            + purge(&mut inner.failures, batch, |(_, e)| *e < now)
            + purge(&mut inner.revoked_grants, batch, |e| *e < now)
            + purge(&mut inner.sessions, batch, |s| {
                s.ended_at
                    .is_some_and(|t| t < now.saturating_sub(crate::ENDED_SESSION_KEEP_S))
            });
        // Successor links of purged tokens go with them.
        let refresh = &inner.refresh;
        inner
            .successors
            .retain(|parent, _| refresh.contains_key(parent));
        Ok(purged)
    }
}

/// Removes up to `batch` entries for which `expired` holds; returns how many.
fn purge<K: Ord + Clone, V>(
    map: &mut BTreeMap<K, V>,
    batch: usize,
    expired: impl Fn(&V) -> bool,
) -> usize {
    let doomed: Vec<K> = map
        .iter()
        .filter(|(_, v)| expired(v))
        .take(batch)
        .map(|(k, _)| k.clone())
        .collect();
    for k in &doomed {
        map.remove(k);
    }
    doomed.len()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        super::super::conformance::run(&super::MemoryStore::new()).await;
        let shared = std::sync::Arc::new(super::MemoryStore::new());
        super::super::conformance::race(shared.clone(), shared).await;
    }
}

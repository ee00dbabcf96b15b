//! Records from result rows, once for both SQL engines: each store reads
//! its engine's row through [`Columns`], and the column lists in `mod.rs`
//! fix the order.

use erpgate::ScopeSet;
use erpgate::revocation::RevocationEvent;

use super::{StoreError, StoreResult, kind_from_name, split_list};
use crate::records::{
    ApiSession, AuthCode, ClientType, Consent, FeedRow, GrantBasis, GrantKind, IdentitySession,
    Origin, ReferenceToken, ReferenceTokenPolicy, RefreshToken, SigningKeyRecord, TrustedApp, User,
};

/// A result row of either engine, read by column index.
pub(super) trait Columns {
    /// A text column.
    fn text(&self, i: usize) -> StoreResult<String>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    /// An integer column (Unix seconds, counts); a negative value reads 0.
    fn int(&self, i: usize) -> StoreResult<u64>;
    /// A nullable integer column.
    fn opt_int(&self, i: usize) -> StoreResult<Option<u64>>;
    /// A boolean column.
    fn flag(&self, i: usize) -> StoreResult<bool>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn scopes(text: &str) -> StoreResult<ScopeSet> {
    ScopeSet::parse(text).map_err(|_| corrupt("scopes"))
}

/// `APP_COLUMNS` from column `o`.
pub(super) fn app(r: &impl Columns, o: usize) -> StoreResult<TrustedApp> {
    Ok(TrustedApp {
        client_id: r.text(o)?,
        name: r.text(o + 1)?,
        client_type: ClientType::from_code(&r.text(o + 2)?)
            .ok_or_else(|| corrupt("client_type"))?,
        secret_hash: r.opt_text(o + 3)?,
        redirect_uris: split_list(&r.text(o + 4)?),
        logout_uris: split_list(&r.text(o + 5)?),
        internal_users_allowed: r.flag(o + 6)?,
        community_users_allowed: r.flag(o + 7)?,
        system_user_allowed: r.flag(o + 8)?,
        system_user: r.opt_text(o + 9)?,
        scope: scopes(&r.text(o + 10)?)?,
        reference_tokens: ReferenceTokenPolicy::from_code(&r.text(o + 11)?)
            .ok_or_else(|| corrupt("reference_tokens"))?,
        basic_auth_allowed: r.flag(o + 12)?,
        enabled: r.flag(o + 13)?,
        public_refresh_tokens: r.flag(o + 14)?,
        internal: r.flag(o + 15)?,
        require_dpop: r.flag(o + 16)?,
        created_at: r.int(o + 17)?,
    })
}

/// `USER_COLUMNS` from column `o`.
pub(super) fn user(r: &impl Columns, o: usize) -> StoreResult<User> {
    Ok(User {
        login: r.text(o)?,
        id: r.text(o + 1)?,
        name: r.text(o + 2)?,
        email: r.text(o + 3)?,
        user_type: r.text(o + 4)?,
        is_admin: r.flag(o + 5)?,
        locale: r.text(o + 6)?,
        password_hash: r.opt_text(o + 7)?,
    })
}

/// `TOKEN_COLUMNS`.
pub(super) fn token(r: &impl Columns) -> StoreResult<ReferenceToken> {
    Ok(ReferenceToken {
        hash: r.text(0)?,
        id: r.text(1)?,
        kind: GrantKind::parse(&r.text(2)?).ok_or_else(|| corrupt("kind"))?,
        client_id: r.text(3)?,
        subject: r.text(4)?,
        scopes: scopes(&r.text(5)?)?,
        description: r.text(6)?,
        creator: r.text(7)?,
        created_at: r.int(8)?,
        expires_at: r.int(9)?,
        last_used_at: r.opt_int(10)?,
        revoked_at: r.opt_int(11)?,
        jkt: r.opt_text(12)?,
    })
}

/// `token_context_sql`: the token, then its app and user when they exist.
pub(super) fn token_context(r: &impl Columns) -> StoreResult<super::TokenContext> {
    use super::{APP_WIDTH, TOKEN_WIDTH};
    let token = token(r)?;
    let app = r
        .opt_text(TOKEN_WIDTH)?
        .map(|_| app(r, TOKEN_WIDTH))
        .transpose()?;
    let user = r
        .opt_text(TOKEN_WIDTH + APP_WIDTH)?
        .map(|_| user(r, TOKEN_WIDTH + APP_WIDTH))
        .transpose()?;
    Ok(super::TokenContext { token, app, user })
}

/// `BASIS_COLUMNS` from column `o`.
fn basis(r: &impl Columns, o: usize) -> StoreResult<GrantBasis> {
    Ok(GrantBasis {
        grant_id: r.text(o)?,
        client_id: r.text(o + 1)?,
        login: r.text(o + 2)?,
        sid: r.text(o + 3)?,
        scopes: scopes(&r.text(o + 4)?)?,
        auth_time: r.int(o + 5)?,
    })
}

/// `CODE_COLUMNS`.
pub(super) fn code(r: &impl Columns) -> StoreResult<AuthCode> {
    Ok(AuthCode {
        hash: r.text(0)?,
        basis: basis(r, 1)?,
        redirect_uri: r.text(7)?,
        code_challenge: r.opt_text(8)?,
        nonce: r.opt_text(9)?,
        state: r.opt_text(10)?,
        created_at: r.int(11)?,
        expires_at: r.int(12)?,
    })
}

/// `REFRESH_COLUMNS`.
pub(super) fn refresh(r: &impl Columns) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        hash: r.text(0)?,
        basis: basis(r, 1)?,
        created_at: r.int(7)?,
        expires_at: r.int(8)?,
        jkt: r.opt_text(9)?,
    })
}

/// `CONSENT_COLUMNS`.
pub(super) fn consent(r: &impl Columns) -> StoreResult<Consent> {
    Ok(Consent {
        login: r.text(0)?,
        client_id: r.text(1)?,
        scopes: scopes(&r.text(2)?)?,
        granted_at: r.int(3)?,
    })
}

/// `API_SESSION_COLUMNS`.
pub(super) fn api_session(r: &impl Columns) -> StoreResult<ApiSession> {
    Ok(ApiSession {
        key: r.text(0)?,
        id: r.text(1)?,
        login: r.text(2)?,
        client_id: r.opt_text(3)?,
        origin: Origin::from_code(&r.text(4)?).ok_or_else(|| corrupt("origin"))?,
        opened_at: r.int(5)?,
        last_seen: r.int(6)?,
        closes_at: r.opt_int(7)?,
        reserved: r.flag(8)?,
    })
}

/// `KEY_COLUMNS`.
pub(super) fn signing_key(r: &impl Columns) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: r.text(0)?,
        private_pem: r.text(1)?,
        created_at: r.int(2)?,
        retire_at: r.opt_int(3)?,
    })
}

/// `IDENTITY_SESSION_COLUMNS`.
pub(super) fn identity_session(r: &impl Columns) -> StoreResult<IdentitySession> {
    Ok(IdentitySession {
        sid: r.text(0)?,
        login: r.text(1)?,
        auth_time: r.int(2)?,
        created_at: r.int(3)?,
        ended_at: r.opt_int(4)?,
    })
}

/// `FEED_COLUMNS`.
pub(super) fn feed_row(r: &impl Columns) -> StoreResult<FeedRow> {
    Ok(FeedRow {
        seq: r.int(0)?,
        event: RevocationEvent {
            kind: kind_from_name(&r.text(1)?).ok_or_else(|| corrupt("kind"))?,
            value: r.text(2)?,
            expires_at: r.int(3)?,
            issued_before: r.opt_int(4)?,
        },
    })
}

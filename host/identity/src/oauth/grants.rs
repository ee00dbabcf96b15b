//! The interactive grants at `/id/connect/token`: `authorization_code` (with
//! PKCE) and `refresh_token` (rotated on every use; a replay revokes the whole
//! grant), and the user tokens both issue: the access token (ERP.net §2.8),
//! the ID token (§2.9) and the refresh token (§2.6).

use axum::http::HeaderMap;
use base64::Engine as _;
use erpgate::ScopeSet;
use erpgate::cache::TokenHash;
use jwt_simple::prelude::{Claims, Duration};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::claims::{audience, confirmation, token_type};
use super::client_auth::{authenticate_app, presented};
use super::error::OAuthError;
use super::form::Form;
use crate::service::Identity;
use erpgate_store::records::{ClientType, GrantBasis, Redemption, RefreshToken, TrustedApp, User};
use erpgate_store::secrets::random_hex;

/// ID tokens live five minutes (ERP.net §2.9).
pub const ID_TOKEN_LIFETIME_S: u64 = 300;
/// Refresh tokens of confidential apps: 30 days (§2.6).
pub const REFRESH_CONFIDENTIAL_S: u64 = 30 * 24 * 3600;
/// Refresh tokens of public apps that opt in (`public_refresh_tokens`, a
/// departure from ERP.net, which issues them to confidential clients only):
/// 24 hours, as the token-lifetime page and the public SPA sample expect.
pub const REFRESH_PUBLIC_S: u64 = 24 * 3600;

/// User access-token claims beyond the registered ones (§2.8).
#[derive(Debug, Serialize, Deserialize)]
pub struct UserClaims {
    /// API audiences plus `{issuer}/resources`, or that string alone.
    pub aud: Value,
    /// The ApplicationUri.
    pub client_id: String,
    /// When the user signed in.
    pub auth_time: u64,
    /// `local`.
    pub idp: String,
    /// The user's GUID.
    pub id: String,
    /// The user's display name as stored (the login when the configuration
    /// gives none).
    pub name: String,
    /// The user's e-mail address; empty when none is stored.
    pub email: String,
    /// `InternalUser`, `ExternalCommunityUser`, …
    pub user_type: String,
    /// `"true"` / `"false"`, a string as in real tokens.
    pub is_admin: String,
    /// `"false"`, a string as in real tokens.
    pub email_verified: String,
    /// The ERP.net database, `[instance] db` (default `demo`).
    pub db: String,
    /// The user's locale as stored, e.g. `en-US`.
    pub locale: String,
    /// The identity session.
    pub sid: String,
    /// Granted scopes, as an array.
    pub scope: Vec<String>,
    /// `["pwd"]`.
    pub amr: Vec<String>,
    /// `{"jkt": …}` when the token is bound to a DPoP key (RFC 9449 §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Value>,
}

/// ID-token claims beyond the registered ones (§2.9).
#[derive(Debug, Serialize, Deserialize)]
pub struct IdClaims {
    /// The client id, a string.
    pub aud: String,
    /// The authorization request's nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Left half of SHA-256 of the access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Left half of SHA-256 of the code (front channel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c_hash: Option<String>,
    /// Left half of SHA-256 of the request's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_hash: Option<String>,
    /// The identity session.
    pub sid: String,
    /// When the user signed in.
    pub auth_time: u64,
    /// `local`.
    pub idp: String,
    /// `["pwd"]`.
    pub amr: Vec<String>,
}

/// OIDC's `*_hash`: base64url of the left half of SHA-256 (RS256).
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
}

/// Hex SHA-256 of a code or refresh token: the only form stored.
pub fn credential_hash(value: &str) -> String {
    TokenHash::of(value).to_hex()
}

/// The scopes a user of this type may receive: community users get identity
/// scopes only, never API audiences (§2.4).
pub fn scopes_for_user(user: &User, requested: &ScopeSet) -> ScopeSet {
    if user.user_type == "InternalUser" {
        return requested.clone();
    }
    let mut only_identity = ScopeSet::new();
    for s in requested.iter() {
        if super::claims::IDENTITY_SCOPES.contains(&s) {
            let _ = only_identity.insert(s);
        }
    }
    only_identity
}

/// Signs a user access token and records its `jti` under the grant.
pub async fn access_token(
    state: &Identity,
    user: &User,
    basis: &GrantBasis,
    now: u64,
    jkt: Option<&str>,
) -> Result<(String, u64), OAuthError> {
    let lifetime = state.config.instance.access_token_lifetime_s;
    let custom = UserClaims {
        aud: audience(state, &basis.scopes),
        client_id: basis.client_id.clone(),
        auth_time: basis.auth_time,
        idp: "local".into(),
        id: user.id.clone(),
        name: user.name.clone(),
        email: user.email.clone(),
        user_type: user.user_type.clone(),
        is_admin: user.is_admin.to_string(),
        email_verified: "false".into(),
        db: state.config.instance.db.clone(),
        locale: user.locale.clone(),
        sid: basis.sid.clone(),
        scope: basis.scopes.iter().map(str::to_owned).collect(),
        amr: vec!["pwd".into()],
        cnf: confirmation(jkt),
    };
    let jti = random_hex(16);
    let expires_at = now.saturating_add(lifetime);
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(lifetime))
        .with_issuer(&state.issuer)
        .with_subject(&user.login)
        .with_jwt_id(&jti);
    claims.issued_at = Some(Duration::from_secs(now));
    claims.invalid_before = Some(Duration::from_secs(now));
    claims.expires_at = Some(Duration::from_secs(expires_at));
    let token = state
        .keys
        .sign(claims, "at+jwt")
        .map_err(|e| OAuthError::server_error(&e))?;
    // A replay racing this issuance may have revoked the grant meanwhile:
    // the token is then revoked at once, as if the replay had come a moment
    // later (RFC 9700 §4.5: revoke what the code issued).
    if !state
        .store
        .record_grant_jti(&basis.grant_id, &jti, expires_at)
        .await?
    {
        tracing::warn!(client_id = %basis.client_id, "access token issued under a grant revoked meanwhile; revoked");
    }
    Ok((token, lifetime))
}

/// What an ID token binds to besides the user and session.
#[derive(Debug, Default)]
pub struct IdBinding<'a> {
    /// The request's nonce.
    pub nonce: Option<&'a str>,
    /// The access token issued with it (token endpoint).
    pub access_token: Option<&'a str>,
    /// The code issued with it (front channel).
    pub code: Option<&'a str>,
    /// The request's state.
    pub state: Option<&'a str>,
}

/// Signs an ID token (`typ JWT`, five minutes, `aud` = client id).
pub fn id_token(
    state: &Identity,
    login: &str,
    basis: &GrantBasis,
    binding: &IdBinding<'_>,
    now: u64,
) -> Result<String, OAuthError> {
    let custom = IdClaims {
        aud: basis.client_id.clone(),
        nonce: binding.nonce.map(str::to_owned),
        at_hash: binding.access_token.map(half_hash),
        c_hash: binding.code.map(half_hash),
        s_hash: binding.state.map(half_hash),
        sid: basis.sid.clone(),
        auth_time: basis.auth_time,
        idp: "local".into(),
        amr: vec!["pwd".into()],
    };
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(ID_TOKEN_LIFETIME_S))
        .with_issuer(&state.issuer)
        .with_subject(login);
    claims.issued_at = Some(Duration::from_secs(now));
    claims.invalid_before = Some(Duration::from_secs(now));
    claims.expires_at = Some(Duration::from_secs(now.saturating_add(ID_TOKEN_LIFETIME_S)));
    state
        .keys
        .sign(claims, "JWT")
        .map_err(|e| OAuthError::server_error(&e))
}

/// A fresh refresh token for a grant: the value (64 uppercase hex) and the
/// record to store. A public client's is bound to the DPoP key `jkt` its
/// request proved (RFC 9449 §5); a confidential client's never is.
pub fn new_refresh_token(
    app: &TrustedApp,
    basis: &GrantBasis,
    now: u64,
    jkt: Option<&str>,
) -> (String, RefreshToken) {
    let value = random_hex(32);
    let lifetime = match app.client_type {
        ClientType::Public => REFRESH_PUBLIC_S,
        _ => REFRESH_CONFIDENTIAL_S,
    };
    let record = RefreshToken {
        hash: credential_hash(&value),
        basis: basis.clone(),
        created_at: now,
        expires_at: now.saturating_add(lifetime),
        jkt: jkt
            .filter(|_| app.client_type == ClientType::Public)
            .map(str::to_owned),
    };
    (value, record)
}

/// Whether a PKCE verifier (RFC 7636: 43–128 unreserved characters) matches
/// an S256 challenge, compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let shape = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    shape && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// The user behind a grant whose session is still live, or `invalid_grant`.
async fn grant_subject(state: &Identity, basis: &GrantBasis) -> Result<User, OAuthError> {
    state
        .store
        .session(&basis.sid)
        .await?
        .filter(|s| state.session_live(s, state.clock.now()))
        .ok_or_else(|| OAuthError::invalid_grant("the session has ended"))?;
    state
        .store
        .user(&basis.login)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))
}

/// What one token response hands out besides the access token.
struct Issue<'a> {
    /// The authorization request's nonce and state, for the ID token.
    front: (Option<&'a str>, Option<&'a str>),
    /// The refresh token, when one is issued.
    refresh: Option<String>,
    /// The DPoP key the access token is bound to.
    jkt: Option<&'a str>,
}

/// The token response for a grant: access token, ID token with `openid`,
/// refresh token with `offline_access`.
async fn respond(
    state: &Identity,
    app: &TrustedApp,
    user: &User,
    basis: &GrantBasis,
    issue: Issue<'_>,
    now: u64,
) -> Result<Value, OAuthError> {
    let Issue {
        front: (nonce, request_state),
        refresh,
        jkt,
    } = issue;
    let (access, expires_in) = access_token(state, user, basis, now, jkt).await?;
    let mut body = serde_json::Map::new();
    if basis.scopes.contains("openid") {
        let binding = IdBinding {
            nonce,
            access_token: Some(&access),
            state: request_state,
            ..IdBinding::default()
        };
        body.insert(
            "id_token".into(),
            json!(id_token(state, &user.login, basis, &binding, now)?),
        );
    }
    if let Some(value) = refresh {
        body.insert("refresh_token".into(), json!(value));
    }
    body.insert("access_token".into(), json!(access));
    body.insert("expires_in".into(), json!(expires_in));
    body.insert("token_type".into(), json!(token_type(jkt)));
    body.insert("scope".into(), json!(basis.scopes.to_string()));
    let body = Value::Object(body);
    tracing::info!(client_id = %app.client_id, sub = %user.login, scope = %basis.scopes, "issued user tokens");
    Ok(body)
}

/// `grant_type=authorization_code`.
pub async fn authorization_code(
    state: &Identity,
    headers: &HeaderMap,
    form: &Form,
    jkt: Option<&str>,
) -> Result<Value, OAuthError> {
    let app = authenticate_app(state, &presented(headers, form)?).await?;
    super::dpop::required_by(&app, jkt)?;
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let now = state.clock.now();
    let stored = match state
        .store
        .redeem_auth_code(&credential_hash(code), now)
        .await?
    {
        Redemption::Fresh(stored) => stored,
        // Another client's replay says nothing about the code's own client,
        // and must not let that client end someone else's grant.
        Redemption::Replayed(stored) if stored.basis.client_id != app.client_id => {
            return Err(OAuthError::invalid_grant("unknown code"));
        }
        Redemption::Replayed(stored) => {
            // RFC 6749 §4.1.2 / RFC 9700: a replayed code revokes what it issued.
            let revoked = state
                .store
                .revoke_grant(&stored.basis.grant_id, now)
                .await?;
            tracing::warn!(client_id = %stored.basis.client_id, revoked, "authorization code replayed; grant revoked");
            return Err(OAuthError::invalid_grant("the code has already been used"));
        }
        Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown code")),
    };
    if stored.basis.client_id != app.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if now >= stored.expires_at {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if stored.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant("redirect_uri does not match"));
    }
    match (&stored.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent for a code issued without a challenge",
            ));
        }
        (None, None) => {}
    }
    let user = grant_subject(state, &stored.basis).await?;
    let refresh = if stored.basis.scopes.contains("offline_access") {
        let (value, record) = new_refresh_token(&app, &stored.basis, now, jkt);
        if !state.store.insert_refresh_token(&record).await? {
            // Revoked by a racing replay: never stored, so never usable.
            tracing::warn!(client_id = %app.client_id, "refresh token issued under a grant revoked meanwhile; not stored");
        }
        Some(value)
    } else {
        None
    };
    respond(
        state,
        &app,
        &user,
        &stored.basis,
        Issue {
            front: (stored.nonce.as_deref(), stored.state.as_deref()),
            refresh,
            jkt,
        },
        now,
    )
    .await
}

/// `grant_type=refresh_token`.
pub async fn refresh_token(
    state: &Identity,
    headers: &HeaderMap,
    form: &Form,
    jkt: Option<&str>,
) -> Result<Value, OAuthError> {
    let app = authenticate_app(state, &presented(headers, form)?).await?;
    super::dpop::required_by(&app, jkt)?;
    let presented_token = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    // A bound refresh token is checked before it is consumed: a thief
    // without the key cannot even spend it.
    if let Some(bound) = state
        .store
        .refresh_token(&credential_hash(presented_token))
        .await?
        .and_then(|t| t.jkt)
        && jkt != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_grant(
            "the refresh token is bound to another DPoP key",
        ));
    }
    let now = state.clock.now();
    let value = random_hex(32);
    let old = match state
        .store
        .rotate_refresh_token(
            &credential_hash(presented_token),
            &credential_hash(&value),
            now,
            Some(now.saturating_sub(state.config.instance.refresh_reuse_interval_s))
                .filter(|_| state.config.instance.refresh_reuse_interval_s > 0),
        )
        .await?
    {
        Redemption::Fresh(old) => old,
        Redemption::Replayed(old) => {
            let revoked = state.store.revoke_grant(&old.basis.grant_id, now).await?;
            tracing::warn!(client_id = %old.basis.client_id, revoked, "refresh token replayed; grant revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token has already been used",
            ));
        }
        Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown refresh token")),
    };
    if old.basis.client_id != app.client_id {
        state.store.revoke_grant(&old.basis.grant_id, now).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if now >= old.expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    let mut basis = old.basis.clone();
    if let Some(requested) = form.get("scope") {
        let narrower = ScopeSet::parse(requested)
            .map_err(|_| OAuthError::invalid_scope("scope is not a list of scope tokens"))?;
        if !basis.scopes.contains_all(&narrower) {
            return Err(OAuthError::invalid_scope(
                "a refresh cannot widen the granted scopes",
            ));
        }
        basis.scopes = narrower;
    }
    let user = grant_subject(state, &basis).await?;
    let issue = Issue {
        front: (None, None),
        refresh: Some(value),
        jkt,
    };
    respond(state, &app, &user, &basis, issue, now).await
}

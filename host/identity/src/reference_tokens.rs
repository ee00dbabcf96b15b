//! Minting reference tokens (PAT/SAT) under the app's ReferenceTokens policy.
//! Used by the CLI, the admin API and the profile self-service pages.

use erpgate::ScopeSet;
use erpgate::cache::TokenHash;

use crate::accounts::may_use_api;
use crate::oauth::claims::IDENTITY_SCOPES;
use crate::service::Identity;
use erpgate_store::records::{GrantKind, ReferenceToken, ReferenceTokenPolicy};
use erpgate_store::secrets::random_hex;
use erpgate_store::{Store, StoreError};

/// What to mint.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The trusted application.
    pub client_id: String,
    /// PAT or SAT.
    pub kind: GrantKind,
    /// For a PAT: the user it acts as (who is also its creator).
    pub user: Option<String>,
    /// Who asks: a user login, or `None` for an operator (CLI, admin API), who
    /// counts as an administrator.
    pub requested_by: Option<String>,
    /// Space-separated scopes; default: all of the app's API scopes.
    pub scope: Option<String>,
    /// Expiry, Unix seconds. Required.
    pub expires_at: u64,
    /// What the token is for.
    pub description: String,
    /// Binds the token to a DPoP key: its RFC 7638 thumbprint (base64url
    /// SHA-256). A bound token is only good with that key's proofs.
    pub jkt: Option<String>,
}

/// Why a token was not minted. Each maps to a 4xx at the admin API.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// No such app, or it is disabled.
    #[error("unknown or disabled application")]
    UnknownApp,
    /// The app's ReferenceTokens policy is None.
    #[error("the application does not allow reference tokens")]
    NotAllowed,
    /// AdministratorsOnly and the requester is not an administrator.
    #[error("only administrators may mint tokens for this application")]
    AdministratorsOnly,
    /// A PAT without a user, or an unknown user.
    #[error("a PAT needs an existing user")]
    UnknownUser,
    /// A SAT for an app without SystemUserAllowed and a SystemUser.
    #[error("a SAT needs an application with SystemUserAllowed and a SystemUser")]
    NoSystemUser,
    /// The user's type may not use the ERP API through this app (the app's
    /// user-type gate; community users never).
    #[error("the user's type may not use this application's API access")]
    UserTypeNotAllowed,
    /// Only administrators mint SATs.
    #[error("only administrators mint service access tokens")]
    SatNeedsAdministrator,
    /// A scope outside the app's `Scope`, an identity scope, or bad syntax.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// `jkt` is not a base64url SHA-256 thumbprint.
    #[error("dpop_jkt must be a key's RFC 7638 thumbprint: 43 base64url characters")]
    InvalidThumbprint,
    /// Expiry in the past or beyond the instance's maximum.
    #[error("expiry must be in the future and at most {max_days} days away")]
    InvalidExpiry {
        /// The maximum lifetime.
        max_days: u64,
    },
    /// The store could not read or write a record; no token was issued.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A freshly minted token. `value` is shown once and never stored.
#[derive(Debug)]
pub struct Issued {
    /// `enrt_` + 64 uppercase hex.
    pub value: String,
    /// The stored record.
    pub record: ReferenceToken,
}

impl Identity {
    /// Mints a reference token at `now` under this instance's maximum
    /// lifetime (what the admin API and the profile pages call).
    pub async fn issue_reference_token(
        &self,
        request: &IssueRequest,
        now: u64,
    ) -> Result<Issued, IssueError> {
        let max_days = self.config.instance.reference_token_max_days;
        issue(self.store.as_ref(), request, now, max_days).await
    }
}

/// Mints a reference token.
pub async fn issue(
    store: &dyn Store,
    req: &IssueRequest,
    now: u64,
    max_days: u64,
) -> Result<Issued, IssueError> {
    let app = store
        .app(&req.client_id)
        .await?
        .filter(|a| a.enabled)
        .ok_or(IssueError::UnknownApp)?;
    let requester_is_admin = match &req.requested_by {
        None => true,
        Some(login) => store.user(login).await?.is_some_and(|u| u.is_admin),
    };
    match app.reference_tokens {
        ReferenceTokenPolicy::None => return Err(IssueError::NotAllowed),
        ReferenceTokenPolicy::AdministratorsOnly if !requester_is_admin => {
            return Err(IssueError::AdministratorsOnly);
        }
        _ => {}
    }
    let subject = match req.kind {
        GrantKind::Pat => {
            let login = req.user.as_deref().ok_or(IssueError::UnknownUser)?;
            let user = store.user(login).await?.ok_or(IssueError::UnknownUser)?;
            if req.requested_by.as_deref().is_some_and(|r| r != user.login) && !requester_is_admin {
                return Err(IssueError::UnknownUser);
            }
            if app.reference_tokens == ReferenceTokenPolicy::AdministratorsOnly && !user.is_admin {
                return Err(IssueError::AdministratorsOnly);
            }
            if !may_use_api(&app, &user) {
                return Err(IssueError::UserTypeNotAllowed);
            }
            user.login
        }
        GrantKind::Sat => {
            if !requester_is_admin {
                return Err(IssueError::SatNeedsAdministrator);
            }
            app.acting_system_user()
                .ok_or(IssueError::NoSystemUser)?
                .to_owned()
        }
    };
    let scopes = match &req.scope {
        None => {
            let mut all = app.grantable_scopes();
            for s in IDENTITY_SCOPES {
                all.remove(s);
            }
            all
        }
        Some(text) => {
            let set = ScopeSet::parse(text).map_err(|e| IssueError::InvalidScope(e.to_string()))?;
            for s in set.iter() {
                if IDENTITY_SCOPES.contains(&s) || !app.grantable_scopes().contains(s) {
                    return Err(IssueError::InvalidScope(s.to_owned()));
                }
            }
            set
        }
    };
    if req.expires_at <= now || req.expires_at > now.saturating_add(max_days.saturating_mul(86_400))
    {
        return Err(IssueError::InvalidExpiry { max_days });
    }
    if let Some(jkt) = &req.jkt
        && erpgate::decode_b64url(jkt).is_none_or(|digest| digest.len() != 32 || jkt.len() != 43)
    {
        return Err(IssueError::InvalidThumbprint);
    }
    let value = format!("enrt_{}", random_hex(32));
    let record = ReferenceToken {
        id: uuid::Uuid::new_v4().to_string(),
        hash: TokenHash::of(&value).to_hex(),
        kind: req.kind,
        client_id: app.client_id,
        subject: subject.clone(),
        scopes,
        description: req.description.clone(),
        creator: req.requested_by.clone().unwrap_or_else(|| match req.kind {
            GrantKind::Pat => subject,
            GrantKind::Sat => "administrator".into(),
        }),
        created_at: now,
        expires_at: req.expires_at,
        last_used_at: None,
        revoked_at: None,
        jkt: req.jkt.clone(),
    };
    store.insert_reference_token(&record).await?;
    metrics::counter!("erpgate_tokens_issued_total", "kind" => req.kind.as_str()).increment(1);
    Ok(Issued { value, record })
}

//! Records the conformance suite builds its cases from.

use erpgate::ScopeSet;

use crate::records::{
    ApiSession, GrantBasis, GrantKind, Origin, ReferenceToken, RefreshToken, SigningKeyRecord,
};

pub(super) fn token(id: &str, hash: &str, expires_at: u64) -> ReferenceToken {
    ReferenceToken {
        id: id.into(),
        hash: hash.into(),
        kind: GrantKind::Pat,
        client_id: "app".into(),
        subject: "alice".into(),
        scopes: ScopeSet::parse("read").unwrap(),
        description: "ci".into(),
        creator: "alice".into(),
        created_at: 100,
        expires_at,
        last_used_at: None,
        revoked_at: None,
        jkt: None,
    }
}

pub(super) fn key(kid: &str, created_at: u64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        private_pem: format!("pem-{kid}"),
        created_at,
        retire_at: None,
    }
}

pub(super) fn candidate(key: &str, login: &str, origin: Origin, now: u64) -> ApiSession {
    ApiSession::open(key, login, Some("app".into()), origin, now)
}

pub(super) fn basis(grant: &str, sid: &str) -> GrantBasis {
    GrantBasis {
        grant_id: grant.into(),
        client_id: "app".into(),
        login: "alice".into(),
        sid: sid.into(),
        scopes: ScopeSet::parse("openid read offline_access").unwrap(),
        auth_time: 90,
    }
}

pub(super) fn refresh(hash: &str, grant: &str, sid: &str) -> RefreshToken {
    RefreshToken {
        hash: hash.into(),
        basis: basis(grant, sid),
        created_at: 100,
        expires_at: 5000,
        jkt: None,
    }
}

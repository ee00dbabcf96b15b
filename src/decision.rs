//! Decisions and the one mapping from a denial to the wire (RFC 6750 §3).

use std::sync::Arc;

use crate::credential::CredentialError;
use crate::dpop::DpopError;
use crate::jwt::TokenError;
use crate::policy::{IdentityHeaders, Policy, ProtectedResource};
use crate::principal::{Principal, TokenKind};
use crate::scope::ScopeSet;

/// Why a dependency could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The introspection call timed out.
    IntrospectionTimeout,
    /// The introspection call failed or its reply was unusable.
    IntrospectionFailed,
    /// No verification key could be had for the issuer.
    KeysUnavailable,
    /// The adapter got no decision from the engine at all: no valid policy
    /// is loaded, the request could not be read, or the filter failed. It
    /// fails closed with [`fail_closed_response`].
    NoDecision,
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A protected route and no credential at all.
    MissingCredential,
    /// The credential could not be extracted.
    Credential(CredentialError),
    /// The path holds dot-segments, encoded slashes or other ambiguity.
    InvalidPath,
    /// The JWT was refused.
    Token(TokenError),
    /// Introspection says the reference token is not active.
    InactiveReference,
    /// A reference token, but no introspection endpoint is configured.
    ReferenceTokensNotAccepted,
    /// A legacy credential (Basic, ErpSession) and the policy rejects it.
    LegacyRejected,
    /// Valid, but scopes are missing.
    InsufficientScope(ScopeSet),
    /// Valid, but the route does not accept this token kind.
    TokenKindRefused(TokenKind, ScopeSet),
    /// No route matched and the default is deny.
    NoRoute,
    /// A dependency is down and the failure mode is closed.
    Unavailable(Unavailable),
    /// An OData request (a `$batch` body, an encoding) that cannot be read,
    /// so the entity sets it reaches are unknown.
    InvalidOData(crate::odata::ODataError),
    /// The `DPoP` proof was refused (RFC 9449 §7.1).
    Dpop(DpopError),
    /// The policy asks for server nonces and the proof carries none, or
    /// not a current one (RFC 9449 §9): the response hands over this one
    /// in `DPoP-Nonce`.
    DpopNonce(Box<str>),
}

impl Reason {
    /// A stable snake_case code for logs, metrics and test vectors.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::MissingCredential => "missing_credential",
            Reason::Credential(e) => match e {
                CredentialError::MultipleCredentials => "multiple_credentials",
                CredentialError::InvalidEncoding => "invalid_header_encoding",
                CredentialError::MalformedAuthorization => "malformed_authorization",
                CredentialError::UnsupportedScheme => "unsupported_scheme",
                CredentialError::TokenInUrl => "token_in_url",
                CredentialError::MalformedToken => "malformed_token",
                CredentialError::MalformedReferenceToken => "malformed_reference_token",
            },
            Reason::InvalidPath => "invalid_path",
            Reason::Token(e) => e.code(),
            Reason::InactiveReference => "inactive",
            Reason::ReferenceTokensNotAccepted => "reference_tokens_not_accepted",
            Reason::LegacyRejected => "legacy_rejected",
            Reason::InsufficientScope(_) => "insufficient_scope",
            Reason::TokenKindRefused(..) => "token_kind_refused",
            Reason::NoRoute => "no_route",
            Reason::Unavailable(Unavailable::IntrospectionTimeout) => "introspection_timeout",
            Reason::Unavailable(Unavailable::IntrospectionFailed) => "introspection_failed",
            Reason::Unavailable(Unavailable::KeysUnavailable) => "jwks_unavailable",
            Reason::Unavailable(Unavailable::NoDecision) => "no_decision",
            Reason::InvalidOData(e) => e.code(),
            Reason::Dpop(e) => e.code(),
            Reason::DpopNonce(_) => DpopError::NonceRequired.code(),
        }
    }

    /// The HTTP status (design §3).
    pub fn status(&self) -> u16 {
        match self {
            Reason::MissingCredential => 401,
            Reason::Credential(
                CredentialError::MalformedToken | CredentialError::MalformedReferenceToken,
            ) => 401,
            Reason::Credential(_) | Reason::InvalidPath => 400,
            Reason::Token(_)
            | Reason::Dpop(_)
            | Reason::DpopNonce(_)
            | Reason::InactiveReference
            | Reason::ReferenceTokensNotAccepted
            | Reason::LegacyRejected => 401,
            Reason::InsufficientScope(_) | Reason::TokenKindRefused(..) | Reason::NoRoute => 403,
            Reason::Unavailable(_) => 503,
            Reason::InvalidOData(crate::odata::ODataError::TooLarge) => 413,
            Reason::InvalidOData(_) => 400,
        }
    }

    /// The RFC 6750 / RFC 6749 error code on the wire.
    pub fn error_code(&self) -> Option<&'static str> {
        match self.status() {
            400 | 413 => Some("invalid_request"),
            401 if *self == Reason::MissingCredential => None,
            401 => Some(match self {
                Reason::Dpop(e) => e.error_code(),
                Reason::DpopNonce(_) => DpopError::NonceRequired.error_code(),
                _ => "invalid_token",
            }),
            403 if *self == Reason::NoRoute => Some("access_denied"),
            403 => Some("insufficient_scope"),
            _ => Some("temporarily_unavailable"),
        }
    }

    /// A fixed, secret-free explanation.
    pub fn description(&self) -> String {
        match self {
            Reason::MissingCredential => "a credential is required".into(),
            Reason::Credential(e) => e.to_string(),
            Reason::InvalidPath => "the request path is ambiguous".into(),
            Reason::Token(e) => e.to_string(),
            Reason::InactiveReference => "the reference token is not active".into(),
            Reason::ReferenceTokensNotAccepted => "reference tokens are not accepted here".into(),
            Reason::LegacyRejected => "legacy authentication is not accepted here".into(),
            Reason::InsufficientScope(_) => "the token lacks a required scope".into(),
            Reason::TokenKindRefused(kind, _) => {
                format!("{} tokens are not accepted on this route", kind.as_str())
            }
            Reason::NoRoute => "no route allows this request".into(),
            Reason::Unavailable(_) => "the authorization service is unavailable".into(),
            Reason::InvalidOData(e) => e.to_string(),
            Reason::Dpop(e) => e.to_string(),
            Reason::DpopNonce(_) => DpopError::NonceRequired.to_string(),
        }
    }

    /// Whether the challenge is RFC 9449's `DPoP` rather than `Bearer`:
    /// for a refused proof, and for a token refused for how it was bound or
    /// presented.
    fn dpop_challenge(&self) -> bool {
        matches!(
            self,
            Reason::Dpop(_)
                | Reason::DpopNonce(_)
                | Reason::Token(
                    TokenError::BoundAsBearer | TokenError::NotBound | TokenError::DpopRequired
                )
        )
    }

    fn challenge_scope(&self) -> Option<&ScopeSet> {
        match self {
            Reason::InsufficientScope(s) | Reason::TokenKindRefused(_, s) => Some(s),
            _ => None,
        }
    }
}

/// A denial, ready to be mapped to a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Why the request was refused; it picks the status and error code.
    pub reason: Reason,
    /// The matched route, if any.
    pub route: Option<String>,
    /// Who the token spoke for, when it was verified before the refusal
    /// (a missing scope, a refused token kind), for the decision log.
    pub principal: Option<Box<Principal>>,
}

/// A local response for an adapter to send as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 400, 401, 403 or 503.
    pub status: u16,
    /// Response headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// A JSON object with an RFC 6749 / RFC 6750 `error` member.
    pub body: String,
}

impl Denial {
    /// The response for this denial under the policy's realm and
    /// description setting.
    pub fn response(&self, policy: &Policy) -> Response {
        let metadata = policy.protected_resource.as_ref();
        let challenge = Challenge {
            realm: &policy.realm,
            dpop_algs: &policy.dpop.algs,
            resource_metadata: metadata.map(|m| m.metadata_url.as_str()),
        };
        render(&self.reason, &challenge, policy.error_description)
    }
}

/// The reason code of the metadata answer ([`Decision::Answer`]) where an
/// adapter or a log reports one.
pub const METADATA_ANSWER: &str = "protected_resource_metadata";

/// The answer to a request for the protected-resource metadata (RFC 9728
/// §3.2): the document the policy rendered, with no body for `HEAD`. It is
/// public: any origin may read it.
pub fn metadata_response(metadata: &ProtectedResource, head: bool) -> Response {
    Response {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "cache-control".to_owned(),
                format!("public, max-age={}", metadata.max_age_s),
            ),
            ("access-control-allow-origin".to_owned(), "*".to_owned()),
        ],
        body: if head {
            String::new()
        } else {
            metadata.document.clone()
        },
    }
}

/// The answer when an adapter (or the host's gateway) has no decision at
/// all and fails closed: 503 `temporarily_unavailable`, nothing more.
pub fn fail_closed_response() -> Response {
    let challenge = Challenge {
        realm: "",
        dpop_algs: "",
        resource_metadata: None,
    };
    render(
        &Reason::Unavailable(Unavailable::NoDecision),
        &challenge,
        false,
    )
}

/// What a challenge names besides the error: the policy's realm, the
/// algorithms DPoP proofs may use, and the RFC 9728 metadata.
struct Challenge<'a> {
    realm: &'a str,
    dpop_algs: &'a str,
    resource_metadata: Option<&'a str>,
}

/// Status, `WWW-Authenticate` and a small JSON body for a reason. This is
/// the only place a denial becomes bytes.
fn render(reason: &Reason, c: &Challenge<'_>, error_description: bool) -> Response {
    let status = reason.status();
    let error = reason.error_code();
    let description = error_description.then(|| reason.description());
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("cache-control".to_owned(), "no-store".to_owned()),
    ];
    if matches!(status, 400 | 401) || (status == 403 && *reason != Reason::NoRoute) {
        let mut challenge = if reason.dpop_challenge() {
            format!("DPoP realm=\"{}\", algs=\"{}\"", c.realm, c.dpop_algs)
        } else {
            format!("Bearer realm=\"{}\"", c.realm)
        };
        if let Some(error) = error {
            challenge.push_str(&format!(", error=\"{error}\""));
            if let Some(d) = &description {
                challenge.push_str(&format!(
                    ", error_description=\"{}\"",
                    d.replace(['"', '\\'], "'")
                ));
            }
        }
        if let Some(scope) = reason.challenge_scope().filter(|s| !s.is_empty()) {
            challenge.push_str(&format!(", scope=\"{scope}\""));
        }
        if let Some(url) = c.resource_metadata {
            challenge.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        headers.push(("www-authenticate".to_owned(), challenge));
    }
    if let Reason::DpopNonce(nonce) = reason {
        headers.push(("dpop-nonce".to_owned(), nonce.to_string()));
    }
    let mut body = serde_json::Map::new();
    if let Some(error) = error {
        body.insert("error".into(), error.into());
    } else {
        body.insert("error".into(), "unauthorized".into());
    }
    if let Some(d) = description {
        body.insert("error_description".into(), d.into());
    }
    if let Some(scope) = reason.challenge_scope().filter(|s| !s.is_empty()) {
        body.insert("scope".into(), scope.to_string().into());
    }
    Response {
        status,
        headers,
        body: serde_json::Value::Object(body).to_string(),
    }
}

/// Header edits for an allowed request: remove first, then set
/// ([`Allow::headers_to_set`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Lowercase header names to remove, in every letter case (shared with
    /// the policy: no copy per request).
    pub remove: Arc<[String]>,
}

/// A verified principal and the policy's identity-header names. Caches
/// hold it, and every request that presents the same token shares it: a
/// cache hit copies nothing, and an entry keeps no header text of its own
/// (the values are the principal's fields).
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    /// Who the token speaks for.
    pub principal: Principal,
    /// The names the identity headers go under (shared with the policy).
    names: Arc<IdentityHeaders>,
}

impl Identity {
    /// The principal with the policy's identity-header names.
    pub fn new(policy: &Policy, principal: Principal) -> Arc<Self> {
        Arc::new(Identity {
            principal,
            names: Arc::clone(&policy.headers),
        })
    }

    /// The identity headers, as (name, value), in the policy's order; a
    /// header the policy does not name, or a value the principal lacks, is
    /// left out.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let (h, p) = (&*self.names, &self.principal);
        [
            (&h.subject, Some(p.subject())),
            (&h.user_id, p.user_id()),
            (&h.client_id, p.client_id()),
            (&h.db, p.db()),
            (&h.scopes, Some(p.scopes.as_str())),
            (&h.token_kind, Some(p.kind.as_str())),
            (&h.session_id, p.sid()),
            (&h.is_admin, Some(if p.is_admin { "true" } else { "false" })),
            (&h.user_type, p.user_type()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.as_deref()?, value?)))
    }
}

/// An allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// The verified identity with its headers; `None` on public routes,
    /// legacy pass-through and shadow denials.
    pub identity: Option<Arc<Identity>>,
    /// The matched route, if any.
    pub route: Option<String>,
    /// What to do to the request headers before forwarding.
    pub headers: HeaderEdits,
    /// Whether the identity came from a cache.
    pub from_cache: bool,
    /// False when the route runs in shadow mode.
    pub enforced: bool,
    /// In shadow mode, the denial enforcement would have made: the request
    /// goes on untouched (no identity header set or stripped).
    pub would_deny: Option<Denial>,
}

/// The engine's verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward upstream with the header edits.
    Allow(Box<Allow>),
    /// Answer locally with [`Denial::response`]; nothing goes upstream.
    Deny(Denial),
    /// Answer locally with this response, which is not a denial: the
    /// protected-resource metadata ([`metadata_response`]). Nothing goes
    /// upstream and no decision is logged.
    Answer(Response),
}

impl Allow {
    /// The verified principal, if any.
    pub fn principal(&self) -> Option<&Principal> {
        self.identity.as_deref().map(|i| &i.principal)
    }

    /// The identity headers to set after the removals.
    pub fn headers_to_set(&self) -> impl Iterator<Item = (&str, &str)> {
        self.identity.iter().flat_map(|i| i.headers())
    }
}

impl Decision {
    /// The status a harness compares: 200 for allow.
    pub fn status(&self) -> u16 {
        match self {
            Decision::Allow(_) => 200,
            Decision::Deny(d) => d.reason.status(),
            Decision::Answer(r) => r.status,
        }
    }
}

/// The request's header names, other than the identity headers themselves in
/// any letter case, that a common upstream reads as one of them: WSGI, Rack
/// and PHP turn `-` and `_` alike into `_` (`HTTP_X_ERP_SUBJECT`), and nginx
/// with `underscores_in_headers` passes `x_erp_subject` on. Empty, with no
/// allocation, unless such a header is present.
pub fn folded_identity_headers(policy: &Policy, headers: &[(&str, &[u8])]) -> Vec<String> {
    let mut folded: Vec<String> = Vec::new();
    for (name, _) in headers {
        if !name.contains('_') || folded.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            continue;
        }
        let folds = |identity: &String| {
            name.len() == identity.len()
                && name
                    .bytes()
                    .zip(identity.bytes())
                    .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
        };
        if policy.headers.strip.iter().any(folds) {
            // Lowercase, like every removal: adapters match in any case.
            folded.push(name.to_ascii_lowercase());
        }
    }
    folded
}

//! The step protocol: what the engine asks of an adapter (an HTTP call, a
//! signature check, or to park a request), what the adapter answers, and the
//! opaque handles that carry a suspended request or a background job across.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cache::{CacheKey, TokenHash};
use crate::decision::Decision;
use crate::keys::Algorithm;

/// What an outbound call is for. The adapter adds client authentication to
/// introspection and feed calls; JWKS fetches are anonymous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// RFC 7662 introspection of a reference token.
    Introspection,
    /// A JWKS fetch for one issuer.
    Jwks,
    /// A poll of the revocation feed.
    RevocationFeed,
}

impl Purpose {
    /// Whether the adapter must add the introspection client credentials
    /// (see [`crate::introspection::client_authorization`]).
    pub fn needs_client_auth(self) -> bool {
        matches!(self, Purpose::Introspection | Purpose::RevocationFeed)
    }

    /// The name adapters, vectors and logs use.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Introspection => "introspection",
            Purpose::Jwks => "jwks",
            Purpose::RevocationFeed => "revocation_feed",
        }
    }
}

/// One outbound HTTP call the engine asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// What it is for.
    pub purpose: Purpose,
    /// The named upstream (Envoy cluster, worker binding, or host base URL).
    pub upstream: String,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query, as the upstream expects them.
    pub path: String,
    /// `:authority`, when the policy sets one.
    pub authority: Option<String>,
    /// Request headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Request body. Holds the reference token for introspection: never log it.
    pub body: Vec<u8>,
    /// Give up after this long and resume with [`Outcome::Timeout`].
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCall")
            .field("purpose", &self.purpose)
            .field("upstream", &self.upstream)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A signature check the engine hands to host crypto (WebCrypto, Envoy's
/// `verify_signature`), when the adapter declared it for this algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// The algorithm bound to the key.
    pub alg: Algorithm,
    /// The public key.
    pub key: Arc<crate::keys::PublicJwk>,
    /// The JWS signing input (`header.payload`, ASCII).
    pub signing_input: Vec<u8>,
    /// The raw signature.
    pub signature: Vec<u8>,
}

/// How an outbound call or host check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response.
    Response {
        /// Any status; the engine judges it.
        status: u16,
        /// The whole body, unparsed.
        body: Vec<u8>,
    },
    /// No response within the call's timeout.
    Timeout,
    /// Connection failure, unknown upstream, or any other transport error.
    Failed,
    /// The host-crypto verdict for a [`Step::Verify`].
    Verified(bool),
}

/// An outbound call other requests may wait on instead of repeating it: one
/// introspection per token, one JWKS fetch per issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flight(pub(super) FlightKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum FlightKind {
    Introspection(TokenHash),
    Jwks(usize),
}

/// What the engine needs next.
#[derive(Debug)]
pub enum Step {
    /// The request is decided; nothing more is needed.
    Decided(Decision),
    /// Perform this call, then [`Engine::resume`](super::Engine::resume).
    Call {
        /// What to send.
        call: HttpCall,
        /// Give this back to `resume`.
        pending: Suspended,
    },
    /// Verify this signature with host crypto, then
    /// [`Engine::resume`](super::Engine::resume) with [`Outcome::Verified`].
    Verify {
        /// The key, the signed text and the signature.
        request: VerifyRequest,
        /// Give this back to `resume`.
        pending: Suspended,
    },
    /// The call this request needs is already under way for another request
    /// (single flight, see
    /// [`Engine::with_single_flight`](super::Engine::with_single_flight)).
    /// Park it; when that call's outcome arrives,
    /// [`Engine::resume`](super::Engine::resume) it with the same outcome.
    /// Only engines with single flight on return this.
    Wait {
        /// The call being waited for; [`Suspended::flight`] of the leader, or
        /// [`BackgroundJob::flight`] of a background job, names the same one.
        flight: Flight,
        /// Give this back to `resume`.
        pending: Suspended,
    },
}

/// The route a request matched, kept by position (`None`: the default
/// route for authenticated requests), and the further routes it reaches
/// through OData (navigation, `$expand`, filters, `$batch`), one bit per
/// route index: each must authorize the principal too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RouteRef {
    pub(super) index: Option<usize>,
    pub(super) also: u128,
}

impl RouteRef {
    pub(super) const DEFAULT_AUTHENTICATED: RouteRef = RouteRef {
        index: None,
        also: 0,
    };

    pub(super) fn index(i: usize) -> Self {
        Self {
            index: Some(i),
            also: 0,
        }
    }

    /// The further routes, by index: one step per set bit.
    /// This route, then every route the request reaches through OData,
    /// each on its own.
    pub(super) fn with_reached(self) -> impl Iterator<Item = RouteRef> {
        std::iter::once(self).chain(self.also().map(|i| RouteRef {
            index: Some(i),
            also: 0,
        }))
    }

    pub(super) fn also(self) -> impl Iterator<Item = usize> {
        let mut bits = self.also;
        std::iter::from_fn(move || {
            let i = bits.trailing_zeros();
            (bits != 0).then(|| {
                bits &= bits - 1;
                i as usize
            })
        })
    }
}

/// What a suspended request waits for, with what it needs to go on.
pub(super) enum Awaited {
    Keys(KeyWait),
    Introspection {
        hash: TokenHash,
        /// Waits on another request's introspection instead of its own.
        follower: bool,
    },
    Signature(SignatureCheck),
    /// A DPoP proof's signature, at host crypto.
    Proof(Box<super::presented::ProofWait>),
}

/// A token's two names: its key in the local JWT cache and its SHA-256.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hashes {
    pub(super) key: CacheKey,
    pub(super) sha: TokenHash,
}

/// A JWT whose issuer's keys are being fetched.
pub(super) struct KeyWait {
    pub(super) token: String,
    pub(super) issuer: usize,
    /// Waits on another request's fetch instead of its own.
    pub(super) follower: bool,
}

/// A JWT whose signature host crypto is checking.
pub(super) struct SignatureCheck {
    pub(super) issuer: usize,
    pub(super) hash: Hashes,
    pub(super) claims: Map<String, Value>,
}

/// A request suspended while its adapter performs a call. Opaque; holds the
/// token while a JWKS fetch is under way, so its `Debug` prints nothing of it.
pub struct Suspended {
    pub(super) route: RouteRef,
    pub(super) awaited: Awaited,
    /// Client headers an upstream would read as identity headers (see
    /// [`crate::decision::folded_identity_headers`]); removed on allow.
    pub(super) folded: Vec<String>,
    /// The request's `DPoP` presentation, checked once the principal is known.
    pub(super) presented: Option<Box<super::presented::Presented>>,
}

impl Suspended {
    /// The flight this request leads: followers parked on it must be resumed
    /// with the same outcome. `None` for followers and signature checks.
    pub fn flight(&self) -> Option<Flight> {
        match self.awaited {
            Awaited::Introspection {
                hash,
                follower: false,
            } => Some(Flight(FlightKind::Introspection(hash))),
            Awaited::Keys(KeyWait {
                issuer,
                follower: false,
                ..
            }) => Some(Flight(FlightKind::Jwks(issuer))),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Suspended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.awaited {
            Awaited::Keys(_) => "jwks",
            Awaited::Introspection { .. } => "introspection",
            Awaited::Signature(_) => "signature",
            Awaited::Proof(_) => "dpop proof",
        };
        f.debug_struct("Suspended")
            .field("waiting", &what)
            .finish_non_exhaustive()
    }
}

/// A periodic call planned by [`Engine::due_calls`](super::Engine::due_calls).
#[derive(Debug)]
pub struct DueCall {
    /// The call to perform.
    pub call: HttpCall,
    /// Give this back to [`Engine::complete`](super::Engine::complete).
    pub job: BackgroundJob,
}

/// Which background work a [`DueCall`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundJob {
    /// JWKS refresh for the issuer at this index.
    Jwks(usize),
    /// A revocation-feed poll.
    Feed,
}

impl BackgroundJob {
    /// The flight requests may be parked on while this job runs.
    pub fn flight(self) -> Option<Flight> {
        match self {
            BackgroundJob::Jwks(issuer) => Some(Flight(FlightKind::Jwks(issuer))),
            BackgroundJob::Feed => None,
        }
    }
}

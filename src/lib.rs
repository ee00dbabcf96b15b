//! erpgate's policy core: decides whether an HTTP request may reach an ERP.net
//! API, and as whom.
//!
//! The core is sans-io. It reads no clock, opens no socket, draws no random
//! number and calls no host ABI. Adapters (the Envoy proxy-wasm filter, the
//! JS-worker module, the host's emulated API) translate requests into
//! [`Request`], call [`Engine::start`], perform the one HTTP call or signature
//! check a [`Step`] asks for, and [`Engine::resume`].
//!
//! ```
//! use erpgate::{Engine, Policy, Request, Step, Time};
//! let policy = Policy::compile(include_str!("../policies/erpnet.json")).unwrap();
//! let engine = Engine::new(policy);
//! let mut state = engine.new_state([7; 16]); // adapters draw this at random
//! let headers: [(&str, &[u8]); 0] = [];
//! let step = engine.start(&Request::new("GET", "/api/domain/odata/Crm_Customers", &headers), Time::from_secs(1_766_505_200), &mut state);
//! match step {
//!     Step::Decided(decision) => assert_eq!(decision.status(), 401),
//!     _ => unreachable!(),
//! }
//! ```

pub mod adapters;
pub mod cache;
pub mod credential;
pub mod decision;
pub mod decision_log;
pub mod dpop;
pub mod engine;
pub mod introspection;
mod json;
pub mod jwt;
pub mod keys;
pub mod odata;
pub mod policy;
pub mod principal;
pub mod request;
pub mod revocation;
pub mod scope;
mod shared_cache;
mod time;

pub use decision::{
    Allow, Decision, Denial, HeaderEdits, Reason, Response, Unavailable, fail_closed_response,
};
pub use decision_log::DecisionLog;
pub use engine::{
    BackgroundJob, DueCall, Engine, Flight, HttpCall, Outcome, Purpose, Staleness, State, Stats,
    Step, Suspended, VerifyRequest,
};
pub use json::{decode_b64url, encode_b64url};
pub use keys::{Algorithm, KeySet, VerifyingKey};
pub use policy::{Policy, PolicyError, PolicyErrorKind};
pub use principal::{Principal, PrincipalText, TokenKind};
pub use request::Request;
pub use scope::ScopeSet;
pub use shared_cache::SharedCache;
pub use time::Time;

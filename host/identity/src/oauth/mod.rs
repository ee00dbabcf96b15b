//! The OAuth 2.0 endpoints under `/id/connect`.

pub mod claims;
pub mod client_auth;
pub mod dpop;
pub mod error;
pub mod form;
pub mod grants;
pub mod introspect;
pub mod replay;
pub mod token;

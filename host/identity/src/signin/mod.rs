//! Interactive sign-in: `/id/connect/authorize` (authorization code + PKCE,
//! hybrid `code id_token`), the login and consent pages, the SSO session
//! cookie, `/id/connect/userinfo` and `/id/connect/endsession`.
//!
//! Requests are validated before anyone is trusted: an unknown client or an
//! unregistered `redirect_uri` gets an error page, never a redirect; every
//! other error goes back to the client (RFC 6749 §4.1.2.1) with the RFC 9207
//! `iss` parameter. Forms carry a CSRF token that must also match a cookie
//! (double submit); failed logins are throttled per user and per address.

pub(crate) mod cookies;
mod login;
pub mod pages;
pub mod profile;
mod request;
mod session;
mod state;

pub use cookies::{SESSION_COOKIE, cookie};
pub use login::{authorize, consent, login, profile_login};
pub use request::CODE_LIFETIME_S;
pub use session::{endsession, userinfo};
pub use state::SigninState;

//! The emulated ERP API, served beside `/id`: a small Domain API under
//! `/api/domain/odata/`, `GET /profile/me`, ErpLogin, and the license table.
//!
//! Every request is decided by the core engine natively, under
//! `policies/erpnet.json` with this host's issuer, so the API is correct with
//! or without the gateway in front; it never trusts `x-erp-*` headers. The
//! engine's outbound calls (introspection, JWKS, revocation feed) are answered
//! in-process. An allowed credential then enters an ERP session (a license
//! slot); legacy Basic and `ErpSession` credentials, which the policy passes
//! through, are checked here.

mod decide;
mod errors;
mod handlers;
pub mod legacy;
pub mod odata;
pub mod sessions;
mod state;

pub use decide::{ApiCaller, background};
pub use state::{Api, ErpApi, describe_resource};

use axum::Router;
use axum::middleware;
use axum::routing::{any, delete, get, post};

/// The emulated ERP API's routes, every one behind the core engine's
/// decision.
pub fn router(api: ErpApi) -> Router {
    let decided = Router::new()
        .route("/api/domain/odata/", get(odata::service))
        .route("/api/domain/odata/{segment}", any(odata::resource))
        .route("/api/domain/odata/$batch", any(odata::unsupported))
        .route(
            "/api/domain/odata/{segment}/{*rest}",
            any(odata::unsupported),
        )
        .route("/api/domain/login", post(legacy::login))
        .route("/api/domain/logout", post(legacy::logout))
        .route("/profile/me", get(handlers::profile_me))
        .route_layer(middleware::from_fn_with_state(
            api.clone(),
            decide::authenticate,
        ));
    decided.with_state(api)
}

/// The license table's admin API, served on the operator's listener.
pub fn admin_router(api: ErpApi) -> Router {
    Router::new()
        .route("/admin/sessions", get(handlers::admin_sessions))
        .route("/admin/sessions/{id}", delete(handlers::admin_end_session))
        .with_state(api)
}

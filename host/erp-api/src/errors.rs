//! ERP.net's business-error responses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sessions::*;

/// ERP.net's business-error body: `{message, code, type, info,
/// messageFormat, parameters}`.
pub fn erp_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (
        status,
        Json(json!({
            "message": message,
            "code": code,
            "type": code,
            "info": null,
            "messageFormat": message,
            "parameters": [],
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `MaximumLicenseCountExceeded`, as ERP.net reports business errors (500).
pub fn license_exceeded() -> Response {
    erp_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "MaximumLicenseCountExceeded",
        "The maximum number of licensed sessions has been reached. Try again when a session closes.",
    )
}

/// The answer when no session could open.
pub fn session_refused(e: SessionError) -> Response {
    match e {
        SessionError::MaximumLicenseCountExceeded => license_exceeded(),
        SessionError::Unavailable => unavailable(),
    }
}

pub(crate) fn unavailable() -> Response {
    erp_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The API is temporarily unavailable.",
    )
}

//! What ERP.net's access tokens say: the identity scopes, the audience and
//! the service-token claims.

use erpgate::ScopeSet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::service::Identity;

/// Scopes that identify the user (OIDC) and are never granted to a service.
pub const IDENTITY_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];
/// The legacy scope the official .NET client still sends.
pub const LEGACY_DOMAINAPI: &str = "DomainApi";

/// Service-token claims beyond the registered ones (ERP.net §2.8).
#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// `{aud}`: several audiences as an array, one as a string.
    pub aud: Value,
    /// The ApplicationUri.
    pub client_id: String,
    /// The SystemUser's login.
    pub client_system_user: String,
    /// The SystemUser's type.
    pub client_system_user_type: String,
    /// The SystemUser's GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_system_user_id: Option<String>,
    /// The ERP.net database, `[instance] db`: `client_db` in service tokens
    /// where user tokens say `db`.
    pub client_db: String,
    /// Granted scopes, as a JSON array.
    pub scope: Vec<String>,
    /// `{"jkt": …}` when the token is bound to a DPoP key (RFC 9449 §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Value>,
}

/// The `cnf` claim of a token bound to the DPoP key with thumbprint `jkt`.
pub fn confirmation(jkt: Option<&str>) -> Option<Value> {
    jkt.map(|jkt| json!({ "jkt": jkt }))
}

/// `token_type` of a token response: `DPoP` for a bound token (RFC 9449
/// §5), else `Bearer`.
pub fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

/// The `aud` claim: API audiences plus `{issuer}/resources` when an API scope is
/// granted, else the single string `{issuer}/resources`.
pub fn audience(state: &Identity, scopes: &ScopeSet) -> Value {
    let resources = format!("{}/resources", state.issuer);
    if scopes.iter().any(|s| !IDENTITY_SCOPES.contains(&s)) {
        let mut list: Vec<Value> = state
            .config
            .instance
            .api_audiences
            .iter()
            .map(|a| json!(a))
            .collect();
        list.push(json!(resources));
        Value::Array(list)
    } else {
        Value::String(resources)
    }
}

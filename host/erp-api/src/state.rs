//! The emulated API's state: its engine under ERP.net's policy, and the
//! license table.

use std::sync::{Arc, Mutex};

use erpgate::{Engine, Policy};
use erpgate_identity::Identity;
use erpgate_store::Store;
use serde_json::{Value, json};

use crate::sessions::*;

/// The emulated API's state: the identity host it asks, and its own engine
/// and license table. Cheap to clone.
#[derive(Clone)]
pub struct ErpApi {
    /// The Identity Server it serves beside.
    pub identity: Identity,
    /// The engine and the license table.
    pub api: Arc<Api>,
}

impl ErpApi {
    /// The API beside `identity`, under its issuer and license.
    pub fn new(identity: Identity) -> Self {
        let license = License {
            slots: identity.config.instance.license_slots,
            reserved_accounts: identity.config.instance.reserved_accounts.clone(),
        };
        let api = Api::new(&identity.issuer, license, identity.store.clone());
        Self {
            identity,
            api: Arc::new(api),
        }
    }
}

/// Points the policy's RFC 9728 metadata at the API on `url`'s origin, or
/// drops it when that origin cannot name a protected resource (plain HTTP
/// off loopback).
pub fn describe_resource(policy: &mut Value, url: &str) {
    let Some(members) = policy.as_object_mut() else {
        return;
    };
    match erpgate::policy::resource_origin(url) {
        Some(origin) => {
            if let Some(Value::Object(metadata)) = members.get_mut("protected_resource") {
                metadata.insert("resource".into(), json!(origin));
            }
        }
        None => {
            members.remove("protected_resource");
        }
    }
}

/// The engine and its state, for this host's issuer.
pub struct Api {
    pub(crate) engine: Result<Engine, String>,
    pub(crate) state: Mutex<Option<erpgate::State>>,
    /// The license table.
    pub sessions: Sessions,
}

impl Api {
    /// The API for a host with this issuer and license configuration.
    pub fn new(issuer: &str, license: License, store: Arc<dyn Store>) -> Self {
        let mut policy: Value = serde_json::from_str(include_str!("../../../policies/erpnet.json"))
            .unwrap_or(Value::Null);
        if let Some(first) = policy
            .pointer_mut("/issuers/0")
            .and_then(Value::as_object_mut)
        {
            first.insert("issuer".into(), json!(issuer));
            // The JWKS is answered in-process, so an unknown kid (a key
            // another replica rotated in) may refetch at once.
            first.insert("jwks_cooldown_s".into(), json!(1));
        }
        describe_resource(&mut policy, issuer);
        let engine = Policy::compile(&policy.to_string())
            .map(Engine::new)
            .map_err(|e| e.to_string());
        let state = engine.as_ref().ok().map(|e| e.new_state(rand::random()));
        Self {
            engine,
            state: Mutex::new(state),
            sessions: Sessions::new(license, store),
        }
    }
}

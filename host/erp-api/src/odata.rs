//! A small Domain API in OData shape under `/api/domain/odata/`: three entity
//! sets stored in the host's store, `$top`, `$skip` and `$filter` with `eq`
//! (joined by `and`), and create, read, update (PATCH/MERGE merge, PUT
//! replace) and delete. Scopes are the policy's business: `read` for reads,
//! `update` for writes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::errors::{erp_error, unavailable};
use crate::state::ErpApi;

/// The entity sets and the key each record has.
pub const ENTITY_SETS: [&str; 3] = [
    "Crm_Customers",
    "Logistics_Inventory_Items",
    "Crm_Sales_SalesOrders",
];

/// The largest body a write accepts.
const MAX_BODY: usize = 64 * 1024;

fn odata_error(status: StatusCode, message: &str) -> Response {
    erp_error(status, "ODataError", message)
}

/// Demo records for an empty store.
pub fn demo_records() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Crm_Customers",
            json!({"Id": "7b1f0e4a-1c2d-4e5f-8a9b-0c1d2e3f4a51", "Number": "C-0001", "Name": "Acme Trading", "Active": true, "CreditLimit": 50000}),
        ),
        (
            "Crm_Customers",
            json!({"Id": "7b1f0e4a-1c2d-4e5f-8a9b-0c1d2e3f4a52", "Number": "C-0002", "Name": "Borealis Foods", "Active": true, "CreditLimit": 12000}),
        ),
        (
            "Crm_Customers",
            json!({"Id": "7b1f0e4a-1c2d-4e5f-8a9b-0c1d2e3f4a53", "Number": "C-0003", "Name": "Cobalt Works", "Active": false, "CreditLimit": 0}),
        ),
        (
            "Logistics_Inventory_Items",
            json!({"Id": "2c9d5e6f-7a8b-4c0d-9e1f-2a3b4c5d6e71", "PartNumber": "P-100", "Name": "Pallet jack", "UnitPrice": 420.5}),
        ),
        (
            "Logistics_Inventory_Items",
            json!({"Id": "2c9d5e6f-7a8b-4c0d-9e1f-2a3b4c5d6e72", "PartNumber": "P-200", "Name": "Shelf unit", "UnitPrice": 89.9}),
        ),
        (
            "Crm_Sales_SalesOrders",
            json!({"Id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c61", "DocumentNo": "SO-1001", "CustomerId": "7b1f0e4a-1c2d-4e5f-8a9b-0c1d2e3f4a51", "Total": 841.0, "State": "Released"}),
        ),
    ]
}

/// Seeds the demo records when the store has none.
pub async fn seed(store: &dyn erpgate_store::Store) -> erpgate_store::StoreResult<()> {
    for set in ENTITY_SETS {
        if !store.records(set).await?.is_empty() {
            return Ok(());
        }
    }
    for (set, record) in demo_records() {
        let id = record
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // Replicas starting together seed at once: the first insert wins.
        match store.insert_record(set, &id, &record.to_string()).await {
            Ok(()) | Err(erpgate_store::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The canonical name of an entity set (paths are case-insensitive).
fn entity_set(name: &str) -> Option<&'static str> {
    ENTITY_SETS
        .iter()
        .copied()
        .find(|s| s.eq_ignore_ascii_case(name))
}

/// Splits `Set` or `Set(key)` (key optionally quoted, or `guid'…'`).
fn target(segment: &str) -> Option<(&'static str, Option<String>)> {
    let Some((name, rest)) = segment.split_once('(') else {
        return entity_set(segment).map(|s| (s, None));
    };
    let key = rest.strip_suffix(')')?;
    let key = key.strip_prefix("guid").unwrap_or(key);
    let key = key.trim_matches('\'');
    if key.is_empty() || key.contains(['\'', '(', ')', '/']) {
        return None;
    }
    entity_set(name).map(|s| (s, Some(key.to_owned())))
}

/// One `Field eq literal` comparison.
fn parse_filter(filter: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for clause in filter.split(" and ") {
        let mut parts = clause.trim().splitn(3, ' ');
        let (Some(field), Some(op), Some(literal)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("unsupported $filter clause `{clause}`"));
        };
        if op != "eq"
            || field.is_empty()
            || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "unsupported $filter clause `{clause}` (only `Field eq value`)"
            ));
        }
        let literal = literal.trim();
        let value = if let Some(s) = literal
            .strip_prefix('\'')
            .and_then(|l| l.strip_suffix('\''))
        {
            Value::String(s.replace("''", "'"))
        } else if literal == "true" || literal == "false" {
            Value::Bool(literal == "true")
        } else if literal == "null" {
            Value::Null
        } else if let Ok(n) = serde_json::from_str::<serde_json::Number>(literal) {
            Value::Number(n)
        } else {
            return Err(format!("unsupported literal `{literal}` in $filter"));
        };
        out.push((field.to_owned(), value));
    }
    Ok(out)
}

fn matches(record: &Value, filter: &[(String, Value)]) -> bool {
    filter
        .iter()
        .all(|(field, expected)| match (record.get(field), expected) {
            (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Some(actual), expected) => actual == expected,
            (None, Value::Null) => true,
            (None, _) => false,
        })
}

fn number_param(
    params: &erpgate_identity::oauth::form::Form,
    name: &str,
) -> Result<Option<usize>, String> {
    params
        .get(name)
        .map(|v| v.parse::<usize>())
        .transpose()
        .map_err(|_| format!("{name} must be a non-negative integer"))
}

async fn list(state: &ErpApi, set: &'static str, query: &str) -> Response {
    let params = match erpgate_identity::oauth::form::Form::parse(query.as_bytes()) {
        Ok(p) => p,
        Err(_) => return odata_error(StatusCode::BAD_REQUEST, "the query repeats a parameter"),
    };
    let filter = match params.get("$filter").map(parse_filter).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(message) => return odata_error(StatusCode::BAD_REQUEST, &message),
    };
    let (top, skip) = match (
        number_param(&params, "$top"),
        number_param(&params, "$skip"),
    ) {
        (Ok(t), Ok(s)) => (t, s.unwrap_or(0)),
        (Err(message), _) | (_, Err(message)) => {
            return odata_error(StatusCode::BAD_REQUEST, &message);
        }
    };
    let records = match state.identity.store.records(set).await {
        Ok(r) => r,
        Err(_) => return unavailable(),
    };
    let value: Vec<Value> = records
        .iter()
        .filter_map(|(_, json)| serde_json::from_str::<Value>(json).ok())
        .filter(|r| matches(r, &filter))
        .skip(skip)
        .take(top.unwrap_or(usize::MAX))
        .collect();
    Json(json!({
        "@odata.context": format!("{}/api/domain/odata/$metadata#{set}", state.identity.public_url),
        "value": value,
    }))
    .into_response()
}

/// The JSON object of a write, or why not (status, message).
fn body_object(body: &Bytes) -> Result<Map<String, Value>, (StatusCode, &'static str)> {
    if body.len() > MAX_BODY {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err((StatusCode::BAD_REQUEST, "the body must be a JSON object")),
    }
}

fn entity(record: Value, status: StatusCode) -> Response {
    (status, Json(record)).into_response()
}

/// `/api/domain/odata/` (the service document).
pub async fn service(State(state): State<ErpApi>) -> Response {
    Json(json!({
        "@odata.context": format!("{}/api/domain/odata/$metadata", state.identity.public_url),
        "value": ENTITY_SETS.iter().map(|s| json!({"name": s, "kind": "EntitySet", "url": s})).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// `/api/domain/odata/{set}/{…}`, `$batch`: navigation, batches and
/// deeper paths, which this emulation does not serve. They are routed so
/// that the engine decides them first (a token that may not reach what
/// they name gets 403, as from the real server), then answer 501.
pub async fn unsupported() -> Response {
    odata_error(
        StatusCode::NOT_IMPLEMENTED,
        "navigation, $batch and nested paths are not emulated",
    )
}

/// Every method on `/api/domain/odata/{segment}`.
pub async fn resource(
    State(state): State<ErpApi>,
    method: Method,
    Path(segment): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some((set, key)) = target(&segment) else {
        return odata_error(
            StatusCode::NOT_FOUND,
            &format!("no entity set or key `{segment}`"),
        );
    };
    match (method.as_str(), key) {
        ("GET" | "HEAD", None) => list(&state, set, query.as_deref().unwrap_or("")).await,
        ("GET" | "HEAD", Some(id)) => match state.identity.store.record(set, &id).await {
            Ok(Some(json)) => entity(
                serde_json::from_str(&json).unwrap_or(Value::Null),
                StatusCode::OK,
            ),
            Ok(None) => odata_error(StatusCode::NOT_FOUND, "no such record"),
            Err(_) => unavailable(),
        },
        ("POST", None) => {
            let mut record = match body_object(&body) {
                Ok(r) => r,
                Err((status, message)) => return odata_error(status, message),
            };
            let id = uuid::Uuid::new_v4().to_string();
            record.insert("Id".into(), json!(id));
            let record = Value::Object(record);
            match state
                .identity
                .store
                .insert_record(set, &id, &record.to_string())
                .await
            {
                Ok(()) => {
                    let mut r = entity(record, StatusCode::CREATED);
                    if let Ok(v) = HeaderValue::from_str(&format!(
                        "{}/api/domain/odata/{set}({id})",
                        state.identity.public_url
                    )) {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    r
                }
                Err(_) => unavailable(),
            }
        }
        ("PATCH" | "MERGE" | "PUT", Some(id)) => {
            let changes = match body_object(&body) {
                Ok(r) => r,
                Err((status, message)) => return odata_error(status, message),
            };
            let current = match state.identity.store.record(set, &id).await {
                Ok(Some(json)) => json,
                Ok(None) => return odata_error(StatusCode::NOT_FOUND, "no such record"),
                Err(_) => return unavailable(),
            };
            let mut record = if method == Method::PUT {
                Map::new()
            } else {
                match serde_json::from_str::<Value>(&current) {
                    Ok(Value::Object(m)) => m,
                    _ => Map::new(),
                }
            };
            for (k, v) in changes {
                if k != "Id" {
                    record.insert(k, v);
                }
            }
            record.insert("Id".into(), json!(id));
            let record = Value::Object(record);
            match state
                .identity
                .store
                .update_record(set, &id, &record.to_string())
                .await
            {
                Ok(true) => entity(record, StatusCode::OK),
                Ok(false) => odata_error(StatusCode::NOT_FOUND, "no such record"),
                Err(_) => unavailable(),
            }
        }
        ("DELETE", Some(id)) => match state.identity.store.delete_record(set, &id).await {
            Ok(true) => StatusCode::NO_CONTENT.into_response(),
            Ok(false) => odata_error(StatusCode::NOT_FOUND, "no such record"),
            Err(_) => unavailable(),
        },
        _ => odata_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "this method does not apply here",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_filters() {
        assert_eq!(target("crm_customers"), Some(("Crm_Customers", None)));
        assert_eq!(
            target("Crm_Customers(guid'7b1f')"),
            Some(("Crm_Customers", Some("7b1f".into())))
        );
        assert_eq!(
            target("Crm_Customers(abc)"),
            Some(("Crm_Customers", Some("abc".into())))
        );
        assert_eq!(target("Nope"), None);
        assert_eq!(target("Crm_Customers()"), None);
        let f =
            parse_filter("Active eq true and Name eq 'O''Brien' and CreditLimit eq 12000").unwrap();
        assert_eq!(f.len(), 3);
        assert!(matches(
            &json!({"Active": true, "Name": "O'Brien", "CreditLimit": 12000.0}),
            &f
        ));
        assert!(!matches(
            &json!({"Active": false, "Name": "O'Brien", "CreditLimit": 12000}),
            &f
        ));
        assert!(parse_filter("Name gt 'a'").is_err());
        assert!(parse_filter("Name eq x").is_err());
    }
}

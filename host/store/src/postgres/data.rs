//! The ERP API's records and the host's shared secrets.

use deadpool_postgres::GenericClient;

use super::conn::{PostgresStore, conflict_or_backend, corrupt};
use crate::StoreResult;
use crate::rows::Columns;

pub(super) async fn records(
    store: &PostgresStore,
    entity_set: &str,
) -> StoreResult<Vec<(String, String)>> {
    let sql = "SELECT id, body FROM api_records WHERE entity_set = $1 ORDER BY id";
    store
        .list(sql, &[&entity_set], |r| Ok((r.text(0)?, r.text(1)?)))
        .await
}

pub(super) async fn record(
    store: &PostgresStore,
    entity_set: &str,
    id: &str,
) -> StoreResult<Option<String>> {
    let sql = "SELECT body FROM api_records WHERE entity_set = $1 AND id = $2";
    store.one(sql, &[&entity_set, &id], |r| r.text(0)).await
}

pub(super) async fn insert_record(
    store: &PostgresStore,
    entity_set: &str,
    id: &str,
    json: &str,
) -> StoreResult<()> {
    let c = store.client().await?;
    c.execute(
        "INSERT INTO api_records (entity_set, id, body) VALUES ($1, $2, $3)",
        &[&entity_set, &id, &json],
    )
    .await
    .map_err(|e| conflict_or_backend(e, id))?;
    Ok(())
}

pub(super) async fn update_record(
    store: &PostgresStore,
    entity_set: &str,
    id: &str,
    json: &str,
) -> StoreResult<bool> {
    let sql = "UPDATE api_records SET body = $3 WHERE entity_set = $1 AND id = $2";
    Ok(store.run(sql, &[&entity_set, &id, &json]).await? > 0)
}

pub(super) async fn delete_record(
    store: &PostgresStore,
    entity_set: &str,
    id: &str,
) -> StoreResult<bool> {
    let sql = "DELETE FROM api_records WHERE entity_set = $1 AND id = $2";
    Ok(store.run(sql, &[&entity_set, &id]).await? > 0)
}

pub(super) async fn shared_secret(
    store: &PostgresStore,
    name: &str,
    candidate: &str,
) -> StoreResult<String> {
    let insert =
        "INSERT INTO host_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
    store.run(insert, &[&name, &candidate]).await?;
    let select = "SELECT value FROM host_secrets WHERE name = $1";
    store
        .one(select, &[&name], |r| r.text(0))
        .await?
        .ok_or_else(|| corrupt("host_secrets"))
}

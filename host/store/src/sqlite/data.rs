//! The ERP API's records and the host's shared secrets.

use rusqlite::params;

use super::conn::{SqliteStore, all, backend, conflict_or_backend, one};
use crate::rows::Columns;
use crate::{StoreError, StoreResult};

pub(super) async fn records(
    store: &SqliteStore,
    entity_set: &str,
) -> StoreResult<Vec<(String, String)>> {
    let set = entity_set.to_owned();
    store
        .read(move |c| {
            all(
                c,
                "SELECT id, body FROM api_records WHERE entity_set = ?1 ORDER BY id",
                [set],
                |r| Ok((r.text(0)?, r.text(1)?)),
            )
        })
        .await
}

pub(super) async fn record(
    store: &SqliteStore,
    entity_set: &str,
    id: &str,
) -> StoreResult<Option<String>> {
    let (set, id) = (entity_set.to_owned(), id.to_owned());
    store
        .read(move |c| {
            one(
                c,
                "SELECT body FROM api_records WHERE entity_set = ?1 AND id = ?2",
                params![set, id],
                |r| r.text(0),
            )
        })
        .await
}

pub(super) async fn insert_record(
    store: &SqliteStore,
    entity_set: &str,
    id: &str,
    json: &str,
) -> StoreResult<()> {
    let (set, id, body) = (entity_set.to_owned(), id.to_owned(), json.to_owned());
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO api_records (entity_set, id, body) VALUES (?1, ?2, ?3)",
                params![set, id, body],
            )
            .map_err(|e| conflict_or_backend(e, &id))?;
            Ok(())
        })
        .await
}

pub(super) async fn update_record(
    store: &SqliteStore,
    entity_set: &str,
    id: &str,
    json: &str,
) -> StoreResult<bool> {
    let (set, id, body) = (entity_set.to_owned(), id.to_owned(), json.to_owned());
    store
        .write(move |c| {
            c.execute(
                "UPDATE api_records SET body = ?3 WHERE entity_set = ?1 AND id = ?2",
                params![set, id, body],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
}

pub(super) async fn delete_record(
    store: &SqliteStore,
    entity_set: &str,
    id: &str,
) -> StoreResult<bool> {
    let (set, id) = (entity_set.to_owned(), id.to_owned());
    store
        .write(move |c| {
            c.execute(
                "DELETE FROM api_records WHERE entity_set = ?1 AND id = ?2",
                params![set, id],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
}

pub(super) async fn shared_secret(
    store: &SqliteStore,
    name: &str,
    candidate: &str,
) -> StoreResult<String> {
    let (name, candidate) = (name.to_owned(), candidate.to_owned());
    store
        .write(move |c| {
            c.execute(
            "INSERT INTO host_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, candidate],
        )
        .map_err(backend)?;
            one(
                c,
                "SELECT value FROM host_secrets WHERE name = ?1",
                [&name],
                |r| r.text(0),
            )?
            .ok_or_else(|| StoreError::Corrupt("host_secrets".into()))
        })
        .await
}

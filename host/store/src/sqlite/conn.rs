//! The connections: opening and migrating the file, one writer and a few
//! readers, and the row helpers every query uses.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Row};

use crate::rows::Columns;
use crate::{StoreError, StoreResult};

const READERS: usize = 3;

type Shared = Arc<Mutex<Connection>>;

/// SQLite-backed store.
pub struct SqliteStore {
    writer: Shared,
    readers: Vec<Shared>,
    next: AtomicUsize,
}

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(super) fn conflict_or_backend(e: rusqlite::Error, what: &str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what.to_owned())
        }
        other => backend(other),
    }
}

fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(backend)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let version: usize = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    // Signing keys order by rowid, which SQLite has anyway.
    let migrations = crate::migrations("INTEGER PRIMARY KEY AUTOINCREMENT", "");
    for (i, sql) in migrations.iter().enumerate().skip(version) {
        tx.execute_batch(sql).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

/// Every row of a cached query, mapped.
pub(super) fn all<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    params: P,
    map: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut s = c.prepare_cached(sql).map_err(backend)?;
    let mut rows = s.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(map(r)?);
    }
    Ok(out)
}

/// The first row of a cached query, if there is one, mapped.
pub(super) fn one<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    params: P,
    map: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut s = c.prepare_cached(sql).map_err(backend)?;
    let mut rows = s.query(params).map_err(backend)?;
    rows.next().map_err(backend)?.map(map).transpose()
}

impl Columns for Row<'_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.get(i).map_err(backend)
    }

    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i).map_err(backend)
    }

    fn int(&self, i: usize) -> StoreResult<u64> {
        Ok(u64::try_from(self.get::<_, i64>(i).map_err(backend)?).unwrap_or(0))
    }

    fn opt_int(&self, i: usize) -> StoreResult<Option<u64>> {
        let v: Option<i64> = self.get(i).map_err(backend)?;
        Ok(v.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.get(i).map_err(backend)
    }
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) `erpgate.sqlite3` in `dir` and migrates it.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let path = dir.join("erpgate.sqlite3");
        let mut writer = open(&path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open(&path).map(|c| Arc::new(Mutex::new(c))))
            .collect::<StoreResult<_>>()?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers,
            next: AtomicUsize::new(0),
        })
    }

    async fn run<T, F>(conn: Shared, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }

    /// Reads run inline on the calling thread when a reader connection is free:
    /// a point read in WAL mode takes microseconds and never waits for a
    /// writer, so a thread hop would cost more than the query. When every
    /// reader is busy the read moves to the blocking pool.
    pub(super) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let n = self.readers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if let Some(conn) = self.readers.get((start + k) % n)
                && let Ok(mut guard) = conn.try_lock()
            {
                return f(&mut guard);
            }
        }
        let conn = self
            .readers
            .get(start % n.max(1))
            .cloned()
            .unwrap_or_else(|| self.writer.clone());
        Self::run(conn, f).await
    }

    pub(super) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        Self::run(self.writer.clone(), f).await
    }
}

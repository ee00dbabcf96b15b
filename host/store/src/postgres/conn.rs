//! The connection pool, the migrations, and the query helpers every
//! statement goes through.

use std::str::FromStr as _;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::rows::Columns;
use crate::{StoreError, StoreResult};

/// Advisory lock keys (`pg_advisory_lock` takes one 64-bit key).
const LOCK_MIGRATIONS: i64 = 0x6572_7067_6174_0001;
pub(super) const LOCK_FEED: i64 = 0x6572_7067_6174_0002;
pub(super) const LOCK_KEYS: i64 = 0x6572_7067_6174_0003;
pub(super) const LOCK_LICENSE: i64 = 0x6572_7067_6174_0004;

/// Connections per replica.
const POOL_SIZE: usize = 16;

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// PostgreSQL-backed store.
pub struct PostgresStore {
    pool: Pool,
}

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The server's own message when there is one (`tokio_postgres` alone says
/// only "db error"). Neither carries the connection URL.
pub(super) fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(db.to_string()),
        None => backend(e),
    }
}

pub(super) fn conflict_or_backend(e: tokio_postgres::Error, what: &str) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what.to_owned())
    } else {
        pg(e)
    }
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(super) async fn rows<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&statement, params).await.map_err(pg)
}

pub(super) async fn row<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_opt(&statement, params).await.map_err(pg)
}

pub(super) async fn exec<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&statement, params).await.map_err(pg)
}

pub(super) async fn lock<C: GenericClient>(c: &C, key: i64) -> StoreResult<()> {
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&key]).await?;
    Ok(())
}

impl Columns for Row {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.try_get(i).map_err(pg)
    }

    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.try_get(i).map_err(pg)
    }

    fn int(&self, i: usize) -> StoreResult<u64> {
        Ok(u64::try_from(self.try_get::<_, i64>(i).map_err(pg)?).unwrap_or(0))
    }

    fn opt_int(&self, i: usize) -> StoreResult<Option<u64>> {
        let v: Option<i64> = self.try_get(i).map_err(pg)?;
        Ok(v.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.try_get(i).map_err(pg)
    }
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn all<T>(rows: &[Row], map: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and
    /// migrates the database. The URL is never logged.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|_| StoreError::Backend("the PostgreSQL URL does not parse".into()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(backend)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    pub(super) async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(backend)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut c = self.client().await?;
        // A session lock: every replica starting now waits here, and the
        // first applies what is missing.
        c.execute("SELECT pg_advisory_lock($1)", &[&LOCK_MIGRATIONS])
            .await
            .map_err(pg)?;
        let outcome = Self::apply_migrations(&mut c).await;
        let unlocked = c
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_MIGRATIONS])
            .await
            .map_err(pg);
        outcome.and(unlocked.map(|_| ()))
    }

    async fn apply_migrations(c: &mut deadpool_postgres::Object) -> StoreResult<()> {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS erpgate_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg)?;
        let done: Option<i32> = c
            .query_one("SELECT max(version) FROM erpgate_migrations", &[])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        let done = usize::try_from(done.unwrap_or(0)).unwrap_or(0);
        let migrations = crate::migrations(
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            ",\n    ord BIGINT GENERATED ALWAYS AS IDENTITY",
        );
        for (i, sql) in migrations.iter().enumerate().skip(done) {
            let version = i32::try_from(i + 1).map_err(backend)?;
            let tx = c.transaction().await.map_err(pg)?;
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO erpgate_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            tracing::info!(version, "PostgreSQL migration applied");
        }
        Ok(())
    }

    /// The row of one query, mapped, on a pooled connection.
    pub(super) async fn one<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let c = self.client().await?;
        row(&c, sql, params).await?.map(|r| map(&r)).transpose()
    }

    /// Every row of one query, mapped, on a pooled connection.
    pub(super) async fn list<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        let c = self.client().await?;
        all(&rows(&c, sql, params).await?, map)
    }

    /// One statement on a pooled connection; the rows it changed.
    pub(super) async fn run(&self, sql: &str, params: Params<'_>) -> StoreResult<u64> {
        let c = self.client().await?;
        exec(&c, sql, params).await
    }
}

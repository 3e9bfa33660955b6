//! The server's persistent state in SQLite (spec §9): environments, rights, node states, workflows and the
//! per-node deployment log. Every request's writes happen in one transaction: a failed request leaves nothing.

mod envs;
mod log;
mod nodes;
mod rights;

pub use envs::{EnvFilter, EnvRow};
pub use log::{LogRow, STAT_FIELDS, StatsQuery};
pub use nodes::{NodeRow, WorkflowRow};
pub use rights::Rights;

use crate::error::{ApiError, RequestError};
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};
use std::path::Path;
use std::sync::Mutex;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// A Kadeploy error (element exists, conflicts, nothing modified...).
    #[error("{0}")]
    Api(RequestError),
}

impl From<StoreError> for RequestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Api(r) => r,
            other => RequestError::new(ApiError::DatabaseError, other.to_string()),
        }
    }
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The schema, as migrations (Kadeploy's tables of §9 plus `workflows`).
const MIGRATIONS: &[M<'static>] = &[M::up(
    "CREATE TABLE environments (
        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version INTEGER NOT NULL,
        description TEXT NOT NULL DEFAULT '', author TEXT NOT NULL DEFAULT '',
        tarball TEXT NOT NULL, preinstall TEXT NOT NULL DEFAULT '', postinstall TEXT NOT NULL DEFAULT '',
        hypervisor TEXT NOT NULL DEFAULT '', hypervisor_params TEXT NOT NULL DEFAULT '',
        initrd TEXT NOT NULL DEFAULT '', kernel TEXT NOT NULL DEFAULT '', kernel_params TEXT NOT NULL DEFAULT '',
        fdisk_type TEXT, filesystem TEXT, user TEXT NOT NULL DEFAULT 'nobody',
        allowed_users TEXT NOT NULL DEFAULT '', environment_kind TEXT NOT NULL, visibility TEXT NOT NULL,
        demolishing_env INTEGER NOT NULL DEFAULT 0, multipart INTEGER NOT NULL DEFAULT 0, options TEXT,
        UNIQUE (user, name, version));
    CREATE TABLE log (
        wid TEXT NOT NULL, hostname TEXT NOT NULL, step1 TEXT NOT NULL, step2 TEXT NOT NULL, step3 TEXT NOT NULL,
        timeout_step1 INTEGER NOT NULL, timeout_step2 INTEGER NOT NULL, timeout_step3 INTEGER NOT NULL,
        retry_step1 INTEGER NOT NULL, retry_step2 INTEGER NOT NULL, retry_step3 INTEGER NOT NULL,
        start INTEGER NOT NULL, step1_duration INTEGER NOT NULL, step2_duration INTEGER NOT NULL,
        step3_duration INTEGER NOT NULL, env TEXT NOT NULL, anonymous_env TEXT NOT NULL, md5 TEXT NOT NULL,
        success TEXT NOT NULL, error TEXT NOT NULL, user TEXT NOT NULL);
    CREATE INDEX log_wid ON log (wid);
    CREATE INDEX log_host ON log (hostname);
    CREATE TABLE nodes (
        hostname TEXT PRIMARY KEY, state TEXT NOT NULL, env_id INTEGER NOT NULL, date INTEGER NOT NULL,
        user TEXT NOT NULL);
    CREATE TABLE rights (user TEXT NOT NULL, node TEXT NOT NULL, part TEXT NOT NULL, UNIQUE (user, node, part));
    CREATE TABLE workflows (
        wid TEXT PRIMARY KEY, kind TEXT NOT NULL, user TEXT NOT NULL, state TEXT NOT NULL,
        start INTEGER NOT NULL, end INTEGER, nodes TEXT NOT NULL);",
)];

/// The SQLite store. Cheap operations run under one connection lock.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating and migrating when needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        Store::init(Connection::open(path)?)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for one operation.
    fn conn(&self) -> crate::metrics::Timed<'_, Connection> {
        let start = std::time::Instant::now();
        crate::metrics::Timed::new(start, self.conn.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// A Kadeploy error as a store error.
pub(crate) fn api(kind: ApiError, detail: impl Into<String>) -> StoreError {
    StoreError::Api(RequestError::new(kind, detail))
}

/// Seconds since the epoch.
pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

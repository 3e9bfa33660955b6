//! The server's persistent state in SQLite (spec §9): environments, rights, node states, workflows and the
//! per-node deployment log. Every request's writes happen in one transaction: a failed request leaves nothing.
//! One store (one server) holds a database at a time, and a database failure is never silent: it is
//! logged and the request fails (`files`: the lock and the check that the files are still the opened ones).

mod envs;
mod files;
mod import;
mod log;
mod nodes;
mod rights;

pub use envs::{Checksums, EnvFilter, EnvRow};
pub use files::FilesError;
pub use import::{ENV_COLUMNS, ImportTx, ImportedEnv, ImportedLog, Upsert};
pub use log::{LogRow, STAT_FIELDS, StatsQuery};
pub use nodes::{NodeRow, WorkflowRow};
pub use rights::Rights;

use files::DbFiles;
use kadeploy::error::{ApiError, RequestError};
use rusqlite::{Connection, Transaction};
use rusqlite_migration::{M, Migrations};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (inside an operation; reported as [`StoreError::Database`]).
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// A Kadeploy error (element exists, conflicts, nothing modified...).
    #[error("{0}")]
    Api(RequestError),
    /// The database file is held by another process, cannot be opened, or was removed or replaced.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// SQLite failed on the database `path` (an I/O error, a full disk, a read-only file...).
    #[error("the database {path}: {error}{detail}")]
    Database {
        /// The database file (`:memory:` for tests).
        path: PathBuf,
        /// SQLite's error.
        error: rusqlite::Error,
        /// What the system says about writing the files, when SQLite's error is about them.
        detail: String,
    },
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

/// How often [`Store::watch`] checks that the database files are still the opened ones.
pub const WATCH_PERIOD: Duration = Duration::from_secs(5);

/// The SQLite store. Operations run one at a time under one connection lock; each checks first that the
/// database files are still the ones the store opened, and every failure but a Kadeploy error is logged
/// once, with the database path, where it happens.
pub struct Store {
    inner: Mutex<Inner>,
    /// The database path, for messages.
    name: PathBuf,
}

/// The connection and, for a file, its guard.
struct Inner {
    conn: Connection,
    files: Option<DbFiles>,
}

impl Inner {
    fn verify(&mut self) -> Result<()> {
        match self.files.as_mut() {
            Some(f) => Ok(f.verify()?),
            None => Ok(()),
        }
    }
}

impl Store {
    /// Opens (creating and migrating when needed) the database at `path`, after locking it exclusively:
    /// a database another process holds is an error ([`FilesError::InUse`]), never waited for. The lock
    /// lasts as long as the store.
    ///
    /// SQLite runs in exclusive locking mode without memory-mapped I/O: the WAL index lives in the heap,
    /// not in a shared `-shm` mapping whose pages fault (SIGBUS) when the file becomes unwritable, so every
    /// I/O failure is an error SQLite returns.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let files = DbFiles::claim(path)?;
        let named = |e| match e {
            StoreError::Sql(error) => StoreError::Database {
                path: path.to_path_buf(),
                error,
                detail: String::new(),
            },
            other => other,
        };
        let conn = Connection::open(path).map_err(|e| named(e.into()))?;
        Store::init(conn, Some(files), path.to_path_buf()).map_err(named)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?, None, ":memory:".into())
    }

    fn init(mut conn: Connection, files: Option<DbFiles>, name: PathBuf) -> Result<Store> {
        // Before the first access in WAL mode: the WAL index is then kept in the heap (no `-shm`).
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "mmap_size", 0)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        let mut inner = Inner { conn, files };
        inner.verify()?;
        Ok(Store {
            inner: Mutex::new(inner),
            name,
        })
    }

    /// The connection and its files, for one operation (timed in the database latency metric).
    fn lock(&self) -> kadeploy::metrics::Timed<'_, Inner> {
        let start = std::time::Instant::now();
        kadeploy::metrics::Timed::new(start, self.lock_untimed())
    }

    /// The connection and its files, outside any request (the watcher).
    fn lock_untimed(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the read-only `f` on the connection, once the files are checked.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut inner = self.lock();
        let r = inner.verify().and_then(|()| f(&inner.conn));
        self.report(&inner, r)
    }

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise. The files are
    /// checked before, and again after the commit: a change written to a file that is no longer at the
    /// database path is an error, not a success.
    pub fn transaction<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut inner = self.lock();
        let r = Store::in_transaction(&mut inner, f);
        self.report(&inner, r)
    }

    fn in_transaction<T>(
        inner: &mut Inner,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        inner.verify()?;
        let tx = inner.conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        inner.verify()?;
        Ok(value)
    }

    /// Names the database in SQLite's errors (with what the system says about the files) and logs every
    /// error but a Kadeploy one: the request fails with that message and the log has one line about it.
    fn report<T>(&self, inner: &Inner, r: Result<T>) -> Result<T> {
        let e = match r {
            Ok(v) => return Ok(v),
            Err(StoreError::Api(e)) => return Err(StoreError::Api(e)),
            Err(StoreError::Sql(error)) => StoreError::Database {
                path: self.name.clone(),
                detail: match (&error, &inner.files) {
                    (rusqlite::Error::SqliteFailure(..), Some(files)) => files.diagnose(),
                    _ => String::new(),
                },
                error,
            },
            Err(other) => other,
        };
        tracing::error!("{e}");
        Err(e)
    }

    /// Checks the database files every `period` in a background thread (which ends with the store), and
    /// logs when they are removed or replaced, so that it is reported even when no request comes.
    pub fn watch(store: &Arc<Store>, period: Duration) {
        let weak = Arc::downgrade(store);
        let spawned = std::thread::Builder::new()
            .name("kadeploy-db-watch".into())
            .spawn(move || {
                let mut reported = false;
                loop {
                    std::thread::sleep(period);
                    let Some(store) = weak.upgrade() else {
                        return;
                    };
                    let checked = store.lock_untimed().verify();
                    match checked {
                        Err(e) if !reported => {
                            tracing::error!("{e}");
                            reported = true;
                        }
                        Ok(()) if reported => {
                            tracing::warn!(
                                "the database file {} is the opened one again",
                                store.name.display()
                            );
                            reported = false;
                        }
                        _ => {}
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the database watch: {e}");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kadeploy-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_database_is_opened_by_one_store_at_a_time() {
        let dir = temp("once");
        let path = dir.join("k.sqlite");
        let first = Store::open(&path).unwrap();
        let err = Store::open(&path).err().expect("the second open fails");
        assert!(
            matches!(err, StoreError::Files(FilesError::InUse { .. })),
            "{err}"
        );
        drop(first);
        Store::open(&path).expect("free again once the first store is gone");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn no_shared_memory_file_is_mapped() {
        let dir = temp("shm");
        let path = dir.join("k.sqlite");
        let s = Store::open(&path).unwrap();
        s.rights_add("alice", &[], &[], false, &[]).unwrap();
        assert!(dir.join("k.sqlite-wal").exists(), "WAL mode");
        assert!(
            !dir.join("k.sqlite-shm").exists(),
            "the WAL index is in the heap"
        );
        let mode: String = s
            .read(|c| Ok(c.query_row("PRAGMA locking_mode", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(mode, "exclusive");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn operations_on_a_removed_database_fail() {
        let dir = temp("removed");
        let path = dir.join("k.sqlite");
        let s = Store::open(&path).unwrap();
        s.rights_add("alice", &[], &[], false, &[]).unwrap();
        std::fs::remove_file(&path).unwrap();
        let err = s.rights_add("bob", &[], &[], false, &[]).unwrap_err();
        assert!(err.to_string().contains("k.sqlite was removed"), "{err}");
        let err = s.rights_get(None, &[]).unwrap_err();
        assert!(
            matches!(err, StoreError::Files(FilesError::Moved { .. })),
            "{err}"
        );
        let request: RequestError = err.into();
        assert_eq!(request.kind, ApiError::DatabaseError);
        let _ = std::fs::remove_dir_all(dir);
    }
}

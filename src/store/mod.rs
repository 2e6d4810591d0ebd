//! Storage: one SQLite file behind an r2d2 pool. All SQL lives in this module.
//!
//! WAL mode lets the server and the CLI use the file at the same moment; `busy_timeout` makes a
//! writer wait for another instead of failing with "database is locked", and write transactions
//! start `IMMEDIATE` so two writers never deadlock on a lock upgrade.

pub mod accounts;
pub mod oauth_apps;
pub mod oauth_states;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;
use thread_local::ThreadLocal;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use crate::error::{Error, Result};

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/001_oauth_apps.sql")),
        M::up(include_str!("migrations/002_accounts.sql")),
    ])
}

/// Sets the per-connection pragmas every connection needs.
fn init_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
}

/// Creates the database file with mode 0600 before SQLite opens it: SQLite gives the `-wal` and
/// `-shm` files the database file's permissions, so all three stay private whatever the umask.
/// An existing file is left as it is, with a warning when others may access it.
fn create_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Ok(meta) = std::fs::metadata(path)
                    && meta.is_file()
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!(
                        "the database {p} has mode {:04o}, so users other than its owner may read it: run `chmod 600 {p}` while Dravo is stopped (its -wal and -shm files follow)",
                        meta.permissions().mode() & 0o777,
                        p = path.display()
                    );
                }
            }
            Err(e) => {
                return Err(Error::Store(format!(
                    "cannot create the database {}: {e}",
                    path.display()
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// Connections kept only to read `PRAGMA data_version` (see `data_version`), one per
    /// thread so that readers never wait on each other.
    watchers: Arc<ThreadLocal<Watcher>>,
    /// The database's `-shm` file (the WAL index), read to skip unneeded pragmas.
    wal_index: Option<Arc<std::fs::File>>,
}

/// One thread's view of the data version.
struct Watcher {
    conn: Connection,
    /// The WAL-index header seen before the last pragma, and the version the pragma gave.
    last: std::cell::Cell<Option<(WalIndexHeader, i64)>>,
}

/// The two copies of the WAL-index header at the start of the `-shm` file (the SQLite WAL
/// format, "WAL-Index Format"). Every commit rewrites them (the change counter, the last
/// valid frame, checksums); readers never write them.
type WalIndexHeader = [u8; 96];

impl Store {
    /// Opens (creating if needed) the database file, switches it to WAL and applies any
    /// pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Store(format!(
                    "cannot create the database directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        create_private(path)?;
        let manager = SqliteConnectionManager::file(path).with_init(init_connection);
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)
            .map_err(|e| {
                Error::Store(format!("cannot open the database {}: {e}", path.display()))
            })?;
        let store = Store {
            pool,
            path: path.to_path_buf(),
            watchers: Arc::new(ThreadLocal::new()),
            wal_index: None,
        };
        store.migrate()?;
        // The pool keeps a connection open, so the WAL index exists from here on.
        let shm = PathBuf::from(format!("{}-shm", path.display()));
        let wal_index = std::fs::File::open(shm).ok().map(Arc::new);
        Ok(Store { wal_index, ..store })
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.get()?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Store(format!(
                "the database {} cannot use WAL mode (got `{mode}`)",
                self.path.display()
            )));
        }
        // A server and a CLI call may start at the same moment; the loser of that race sees
        // the schema already applied on its second look.
        let migrations = migrations();
        let mut last_err = None;
        for _ in 0..3 {
            match migrations.to_latest(&mut conn) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last_err = Some(e);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Err(Error::Store(format!(
            "cannot migrate the database {}: {}",
            self.path.display(),
            last_err.expect("the loop ran")
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, off the async workers.
    pub async fn call<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::Internal(format!("a database task failed: {e}")))?
    }

    /// A number that changes whenever any connection — in this process or another, such as
    /// the CLI — commits a change. It is what lets a read cache trust its entries, so it is
    /// called per request on the async workers, and kept cheap:
    ///
    /// - when the WAL-index header (one 96-byte `pread` of the `-shm` file) is byte for byte
    ///   what it was before this thread's last `PRAGMA data_version`, no commit has happened
    ///   since, and that pragma's answer still holds;
    /// - otherwise (a commit, a torn read of a header being written, no `-shm` file) the
    ///   pragma runs: a SQLite read transaction on shared memory, no table, no disk.
    pub fn data_version(&self) -> Result<i64> {
        let watcher = self.watchers.get_or_try(|| -> Result<Watcher> {
            let mut conn = Connection::open(&self.path)?;
            init_connection(&mut conn)?;
            Ok(Watcher {
                conn,
                last: std::cell::Cell::new(None),
            })
        })?;
        let header = self.read_wal_index_header();
        if let (Some(now), Some((seen, version))) = (header, watcher.last.get())
            && now == seen
        {
            return Ok(version);
        }
        // The header is read before the pragma: a commit in between changes the header, so
        // the next call looks again rather than trusting this answer too long.
        let version: i64 = watcher
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        watcher.last.set(header.map(|h| (h, version)));
        Ok(version)
    }

    #[cfg(unix)]
    fn read_wal_index_header(&self) -> Option<WalIndexHeader> {
        use std::os::unix::fs::FileExt;
        let mut header = [0u8; 96];
        self.wal_index
            .as_ref()?
            .read_exact_at(&mut header, 0)
            .ok()
            .map(|_| header)
    }

    #[cfg(not(unix))]
    fn read_wal_index_header(&self) -> Option<WalIndexHeader> {
        None
    }

    /// Runs `f` with a pooled connection on the current thread (for start-up checks).
    pub fn call_sync<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.pool.get()?;
        f(&mut conn)
    }
}

/// Reads a value from the `meta` table.
pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Stores `value` under `key` unless a value is there already; returns the stored value.
pub fn meta_init(conn: &Connection, key: &str, value: &str) -> Result<String> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![key, value],
    )?;
    Ok(meta_get(conn, key)?.expect("the row was just written"))
}

/// True when the error is a UNIQUE constraint violation.
fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn data_version_changes_when_another_connection_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let server = Store::open(&path).unwrap();
        let cli = Store::open(&path).unwrap();
        let before = server.data_version().unwrap();
        assert_eq!(server.data_version().unwrap(), before);
        cli.call_sync(|c| meta_init(c, "k", "v")).unwrap();
        assert_ne!(server.data_version().unwrap(), before);
        // The store's own pooled writes count too.
        let mid = server.data_version().unwrap();
        server.call_sync(|c| meta_init(c, "k2", "v")).unwrap();
        assert_ne!(server.data_version().unwrap(), mid);
    }

    #[test]
    fn data_version_fast_path_never_misses_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let server = Store::open(&path).unwrap();
        assert!(server.wal_index.is_some(), "the -shm file is read");
        let other = rusqlite::Connection::open(&path).unwrap();
        let mut last = server.data_version().unwrap();
        for i in 0..200 {
            // Unchanged database: the same answer (from the header check).
            assert_eq!(server.data_version().unwrap(), last);
            other
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, 'v')",
                    [format!("k{i}")],
                )
                .unwrap();
            if i % 50 == 0 {
                // Checkpoints reset the WAL; commits after them must still be seen.
                other
                    .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                    .unwrap();
            }
            let now = server.data_version().unwrap();
            assert_ne!(now, last, "commit {i} was not seen");
            last = now;
        }
    }

    #[test]
    fn open_twice_and_meta_init_keeps_first_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("t.db");
        let a = Store::open(&path).unwrap();
        let b = Store::open(&path).unwrap();
        a.call_sync(|c| meta_init(c, "k", "one")).unwrap();
        assert_eq!(b.call_sync(|c| meta_init(c, "k", "two")).unwrap(), "one");
    }
}

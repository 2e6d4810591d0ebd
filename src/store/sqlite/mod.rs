//! The SQLite backend: one file in WAL mode, so the server and the CLI use it at the same
//! moment.
//!
//! - Writes run on the blocking thread pool with a pooled connection, in `IMMEDIATE`
//!   transactions (two writers never deadlock on a lock upgrade; `busy_timeout` makes one
//!   wait for the other instead of failing with "database is locked").
//! - Reads run inline on the calling thread, on a read-only connection that each thread keeps
//!   for itself. A WAL reader never waits on a writer, and a read of a few indexed rows takes
//!   microseconds, less than a hop to the blocking pool. Each statement is its own read
//!   transaction, started after the previous one ended, so it sees every commit that finished
//!   before it began, by this process or another (the CLI).
//! - Single apps (the connect flow's `start` reads one per request) are kept with the thread's
//!   read connection (`AppMemo`) while that connection's `PRAGMA data_version` is unchanged,
//!   and handed out as copies, so no caller can tell a kept app from a fresh read. The version
//!   is taken before the read it tags, on the same connection, in one synchronous call (the
//!   rule below). Nothing else read is kept here.
//! - `read_version` reads `PRAGMA data_version` on the thread's
//!   read connection and names that connection (`ReadVersion`): SQLite documents that two
//!   invocations of the pragma on one connection differ when any other connection committed
//!   in between, and the read connection itself never writes. A layer above may keep what it
//!   made from a read tagged with a version taken *before* that read, and reuse it while the
//!   version is the same: a commit landing between the pragma and the read only makes what
//!   was read newer than its tag, and the next pragma differs. Values of different
//!   connections move independently and are never compared (the bug of an earlier cache).

mod accounts;
mod apps;
pub mod backup;
mod copy;
mod ids;
mod keys;
mod meta;
mod outbox;
mod pending;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, params};
use rusqlite_migration::{M, Migrations};
use thread_local::ThreadLocal;

use super::{
    AccountFilter, AccountRecord, AppRecord, EventRecord, MasterKeyRecord, OutboxRecord, Page,
    ReadVersion, RegistrationRecord, SchemaVersion, SealedCounts, Store, WebhookBacklog, WriteWork,
};
use crate::domain::{Account, AccountId, AccountStatus, AppId, Owner, Provider, Timestamp};
use crate::error::{Error, Result};

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn migrations() -> Migrations<'static> {
    Migrations::new(migrations_list())
}

fn migrations_list() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("migrations/001_oauth_apps.sql")),
        M::up(include_str!("migrations/002_accounts.sql")),
        M::up(include_str!("migrations/003_unix_timestamps.sql")),
        M::up(include_str!("migrations/004_token_lifecycle.sql")),
        M::up(include_str!("migrations/005_accounts_by_app.sql")),
        M::up(include_str!("migrations/006_pending_connections.sql")),
        M::up(include_str!("migrations/007_child_accounts.sql")),
        M::up(include_str!("migrations/008_app_checks.sql")),
        M::up(include_str!("migrations/009_due_index_covers_id.sql")),
        M::up(include_str!(
            "migrations/010_accounts_by_provider_status.sql"
        )),
        M::up(include_str!("migrations/011_master_keys.sql")),
        M::up(include_str!("migrations/012_webhook_claims.sql")),
        M::up(include_str!("migrations/013_accounts_listed.sql")),
        M::up(include_str!("migrations/014_token_version.sql")),
        M::up(include_str!(
            "migrations/015_channel_and_location_kinds.sql"
        )),
        M::up(include_str!("migrations/016_app_user_agent.sql")),
        M::up(include_str!("migrations/017_instance_registrations.sql")),
    ]
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
                return Err(Error::store_caused(
                    format!("cannot create the database {}", path.display()),
                    e,
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// One read connection per thread that reads (see the module comment).
    readers: Arc<ThreadLocal<Reader>>,
}

/// A thread's read connection, numbered for `ReadVersion`.
struct Reader {
    conn: Connection,
    number: u64,
    apps: std::cell::RefCell<AppMemo>,
}

/// Single apps this thread's read connection returned, valid while its `data_version` is
/// `version` (see the module comment).
#[derive(Default)]
struct AppMemo {
    version: i64,
    apps: std::collections::HashMap<(Owner, AppId), Option<AppRecord>>,
}

/// Past this many apps a thread's memo starts over (bounds memory with many tenants).
const APP_MEMO_LIMIT: usize = 1024;

/// The connection's `PRAGMA data_version`: it changes when another connection commits.
fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?)
}

/// The number of the next read connection opened in this process, by any store.
static NEXT_READER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Reports how long each checkout from the pool waited (`dravo_db_pool_wait_seconds`).
#[derive(Debug)]
struct PoolWaitObserver(prometheus_client::metrics::histogram::Histogram);

impl r2d2::HandleEvent for PoolWaitObserver {
    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        self.0.observe(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, event: r2d2::event::TimeoutEvent) {
        self.0.observe(event.timeout().as_secs_f64());
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, switches it to WAL and applies any
    /// pending migrations. Blocking: call it off the async workers.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_observed(path, None)
    }

    /// `open`, reporting each wait for a pooled connection to `pool_wait`.
    pub fn open_observed(
        path: &Path,
        pool_wait: Option<prometheus_client::metrics::histogram::Histogram>,
    ) -> Result<SqliteStore> {
        create_private(path)?;
        let manager = SqliteConnectionManager::file(path).with_init(init_connection);
        // One connection first, so a file SQLite cannot use fails at once with SQLite's own
        // reason, not after the pool's retries have logged it over seconds.
        r2d2::ManageConnection::connect(&manager).map_err(|e| {
            Error::store_caused(format!("cannot open the database {}", path.display()), e)
        })?;
        let mut builder = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT);
        if let Some(histogram) = pool_wait {
            builder = builder.event_handler(Box::new(PoolWaitObserver(histogram)));
        }
        let pool = builder.build(manager).map_err(|e| {
            Error::store_caused(format!("cannot open the database {}", path.display()), e)
        })?;
        let store = SqliteStore {
            pool,
            path: path.to_path_buf(),
            readers: Arc::new(ThreadLocal::new()),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.get()?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::store(format!(
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
        Err(Error::store_caused(
            format!("cannot migrate the database {}", self.path.display()),
            last_err.expect("the loop ran"),
        ))
    }

    /// This thread's read connection.
    fn reader(&self) -> Result<&Reader> {
        self.readers.get_or_try(|| -> Result<Reader> {
            let mut conn = Connection::open(&self.path)?;
            init_connection(&mut conn)?;
            // This connection only reads: a write through it would be a bug, and would also
            // hide its own commits from its `data_version`.
            conn.execute_batch("PRAGMA query_only = ON;")?;
            Ok(Reader {
                conn,
                number: NEXT_READER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                apps: Default::default(),
            })
        })
    }

    /// Runs a read on this thread's read connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.reader()?.conn)
    }

    /// This thread's read connection's `data_version`, with the connection's number (see the
    /// module comment).
    fn version_now(&self) -> Result<ReadVersion> {
        let reader = self.reader()?;
        Ok(ReadVersion::new(reader.number, data_version(&reader.conn)?))
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, off the async workers.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
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
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT 1")?
                .query_row([], |r| r.get::<_, i64>(0))?)
        })
        .map(|_| ())
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| meta::meta_get(c, key))
    }

    async fn schema_version(&self) -> Result<SchemaVersion> {
        self.read(|c| {
            let found = migrations()
                .current_version(c)
                .map_err(|e| Error::store_caused("cannot read the schema version", e))?;
            Ok(SchemaVersion {
                found: usize::from(&found),
                latest: migrations_list().len(),
            })
        })
    }

    async fn count_accounts(&self) -> Result<Vec<(Provider, AccountStatus, u64)>> {
        // A scan of a whole index: on the blocking pool, not on an async worker.
        self.blocking(|c| accounts::count_by_provider_and_status(c))
            .await
    }

    async fn webhook_backlog(&self) -> Result<WebhookBacklog> {
        self.read(outbox::backlog)
    }

    async fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            Ok(meta::meta_get(c, &key)?.expect("the row was just written"))
        })
        .await
    }

    async fn master_keys(&self) -> Result<Vec<MasterKeyRecord>> {
        self.read(keys::list)
    }

    async fn count_sealed(&self, keys: Vec<Vec<Vec<u8>>>) -> Result<Vec<SealedCounts>> {
        self.blocking(move |c| keys::count(c, &keys)).await
    }

    async fn read_version(&self) -> Result<Option<ReadVersion>> {
        self.version_now().map(Some)
    }

    async fn list_apps(&self, owner: &Owner, provider: Option<Provider>) -> Result<Vec<AppRecord>> {
        self.read(|c| apps::list(c, owner, provider))
    }

    async fn registration(
        &self,
        app_id: &AppId,
        server: &str,
    ) -> Result<Option<RegistrationRecord>> {
        self.read(|c| apps::registration(c, app_id, server))
    }

    async fn registrations(
        &self,
        owner: &Owner,
        app_id: &AppId,
    ) -> Result<Vec<RegistrationRecord>> {
        self.read(|c| apps::registrations(c, owner, app_id))
    }

    async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>> {
        let reader = self.reader()?;
        let version = data_version(&reader.conn)?;
        let key = (owner.clone(), id.clone());
        {
            let mut memo = reader.apps.borrow_mut();
            if memo.version != version || memo.apps.len() >= APP_MEMO_LIMIT {
                *memo = AppMemo {
                    version,
                    ..AppMemo::default()
                };
            }
            if let Some(app) = memo.apps.get(&key) {
                return Ok(app.clone());
            }
        }
        let app = apps::get(&reader.conn, owner, id)?;
        reader.apps.borrow_mut().apps.insert(key, app.clone());
        Ok(app)
    }

    async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.read(|c| accounts::get(c, owner, id))
    }

    async fn list_accounts_page(
        &self,
        owner: &Owner,
        filter: AccountFilter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Page<Account>> {
        self.read(|c| accounts::page(c, owner, &filter, after, limit))
    }

    async fn list_events(
        &self,
        owner: &Owner,
        account: &AccountId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page<EventRecord>> {
        self.read(|c| accounts::events(c, owner, account, before, limit))
    }

    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.read(|c| accounts::by_id(c, id))
    }

    async fn due_accounts(&self, now: Timestamp, limit: usize) -> Result<Vec<AccountId>> {
        self.read(|c| accounts::due(c, now, limit))
    }

    async fn recent_webhooks(
        &self,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>> {
        self.read(|c| outbox::recent(c, status, limit))
    }

    async fn app_account_ids(&self, owner: &Owner, id: &AppId) -> Result<Vec<AccountId>> {
        self.read(|c| accounts::ids_of_app(c, owner, id))
    }

    async fn backup_into(&self, target: &Path) -> Result<()> {
        let target = target.to_owned();
        self.blocking(move |c| backup::copy_into(c, &target)).await
    }

    async fn export_rows(
        &self,
        table: &'static crate::store::tables::Table,
        after: i64,
        limit: usize,
    ) -> Result<Vec<crate::store::copy::CopyRow>> {
        self.blocking(move |c| copy::export(c, table, after, limit))
            .await
    }

    async fn count_rows(&self, table: &'static crate::store::tables::Table) -> Result<u64> {
        self.blocking(move |c| copy::count(c, table)).await
    }

    async fn write_work(&self, work: WriteWork) -> Result<()> {
        let handle = tokio::runtime::Handle::current();
        self.blocking(move |conn| {
            let mut tx = SqliteTx::begin(conn)?;
            // Every call of a SQLite transaction completes at once, so driving its work here,
            // on the blocking pool, never parks an async worker.
            handle.block_on(work(&mut tx))?;
            tx.commit()
        })
        .await
    }
}

/// A write transaction in progress (`BEGIN IMMEDIATE`), on a connection of its own. It holds
/// the connection mutably rather than as a `rusqlite::Transaction`, whose shared borrow of a
/// connection cannot cross threads, so that its work can be a `Send` future.
struct SqliteTx<'a>(&'a mut Connection);

impl<'a> SqliteTx<'a> {
    fn begin(conn: &'a mut Connection) -> Result<SqliteTx<'a>> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx(conn))
    }

    fn commit(self) -> Result<()> {
        // A failed COMMIT leaves the transaction open; `drop` rolls it back.
        self.0.execute_batch("COMMIT")?;
        Ok(())
    }
}

impl Drop for SqliteTx<'_> {
    /// Rolls back whatever did not commit (an error, a panic), so the pooled connection
    /// goes back without an open transaction.
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// The query of the owner's rows of `table`, oldest first (ties in insertion order),
/// optionally for one provider: the shape of every list query.
fn list_by_owner_sql(table: &str, columns: &str) -> String {
    format!(
        "SELECT {columns} FROM {table}
         WHERE owner = ?1 AND (?2 IS NULL OR provider = ?2)
         ORDER BY created_at, rowid"
    )
}

/// Runs a query made by `list_by_owner_sql` for the owner and provider.
fn list_by_owner<T>(
    conn: &Connection,
    sql: &str,
    owner: &Owner,
    provider: Option<Provider>,
    from_row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(
            params![owner.as_str(), provider.map(Provider::as_str)],
            from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// True when the error is a UNIQUE constraint violation.
fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

impl super::codec::RowRead for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }

    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        Ok(self.get(i)?)
    }
}

/// Reads a row with one of the readers both backends share, inside a rusqlite callback.
fn via<T>(
    row: &rusqlite::Row<'_>,
    read: impl FnOnce(&dyn super::codec::RowRead) -> Result<T>,
) -> rusqlite::Result<T> {
    // Its `Display` is the reader's message, which `From<rusqlite::Error>` keeps.
    read(row).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A column that does not hold what the schema promises.
fn bad_column(col: usize, msg: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, msg.into().into())
}

/// Reads a provider name column.
fn provider_column(row: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<Provider> {
    let name: String = row.get(col)?;
    name.parse().map_err(|e| bad_column(col, format!("{e}")))
}

/// Reads an account status column.
fn account_status_column(row: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<AccountStatus> {
    let name: String = row.get(col)?;
    name.parse().map_err(|e: String| bad_column(col, e))
}

fn timestamp_column(row: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<Timestamp> {
    row.get::<_, i64>(col).map(Timestamp::from_unix)
}

fn optional_timestamp_column(
    row: &rusqlite::Row<'_>,
    col: usize,
) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(col)?.map(Timestamp::from_unix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AppCheck;
    use crate::store::{KeyTx, SealedColumn};

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn migration_3_turns_rfc3339_text_into_unix_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        Migrations::new(vec![
            M::up(include_str!("migrations/001_oauth_apps.sql")),
            M::up(include_str!("migrations/002_accounts.sql")),
        ])
        .to_latest(&mut conn)
        .unwrap();
        conn.execute_batch(
            "INSERT INTO oauth_apps VALUES ('oa_b', 'alice', 'x', 'B', 'c', x'00', '[]', '2026-01-01T00:00:00Z');
             INSERT INTO oauth_apps VALUES ('oa_a', 'alice', 'x', 'A', 'c', x'00', '[]', '2026-01-01T00:00:00Z');
             INSERT INTO accounts VALUES ('acc_1', 'alice', 'x', NULL, '42', 'u', NULL, '[]', 'active',
                 x'00', NULL, '2026-01-01T02:00:00Z', NULL, '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z');",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let alice = Owner::parse("owner", "alice").unwrap();
        let apps = store.read(|c| apps::list(c, &alice, None)).unwrap();
        // Same second: insertion order is kept.
        assert_eq!(
            apps.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["oa_b", "oa_a"]
        );
        assert_eq!(apps[0].created_at.rfc3339(), "2026-01-01T00:00:00Z");
        let accounts = store
            .read(|c| accounts::page(c, &alice, &AccountFilter::default(), None, 10))
            .unwrap()
            .items;
        assert_eq!(
            accounts[0].expires_at.unwrap().rfc3339(),
            "2026-01-01T02:00:00Z"
        );
        assert_eq!(accounts[0].updated_at.unix(), 1_767_225_601);
        let stored = store
            .read(|c| accounts::by_id(c, &"acc_1".into()))
            .unwrap()
            .unwrap();
        assert_eq!(stored.refresh_expires_at, None);
    }

    #[test]
    fn migration_7_keeps_every_account_as_a_user_with_its_rowid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v6.db");
        let mut conn = Connection::open(&path).unwrap();
        let mut upto_6 = migrations_list();
        upto_6.truncate(6);
        Migrations::new(upto_6).to_latest(&mut conn).unwrap();
        // Gaps in rowids, as deletions leave them: cursors handed out before must still work.
        conn.execute_batch(
            "INSERT INTO accounts (rowid, id, owner, provider, provider_account_id, scopes,
                 access_token_sealed, created_at, updated_at)
             VALUES (3, 'acc_3', 'alice', 'x', '42', '[]', x'00', 1, 1),
                    (9, 'acc_9', 'alice', 'facebook', '43', '[]', x'00', 2, 2);",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let alice = Owner::parse("owner", "alice").unwrap();
        let page = store
            .read(|c| accounts::page(c, &alice, &AccountFilter::default(), Some(3), 10))
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, "acc_9");
        assert_eq!(page.items[0].kind, crate::domain::AccountKind::User);
        assert_eq!(page.items[0].parent_id, None);
        // A Page's id may repeat under another user, never under the same one.
        let conn = Connection::open(&path).unwrap();
        let child = |id: &str, parent: &str| {
            conn.execute(
                "INSERT INTO accounts (id, owner, provider, provider_account_id, scopes,
                     access_token_sealed, created_at, updated_at, kind, parent_id)
                 VALUES (?1, 'alice', 'facebook', 'page-1', '[]', x'', 1, 1, 'page', ?2)",
                [id, parent],
            )
        };
        child("acc_p1", "acc_9").unwrap();
        child("acc_p2", "acc_3").unwrap();
        assert!(child("acc_p3", "acc_9").is_err());
        let user_with_parent = conn.execute(
            "INSERT INTO accounts (id, owner, provider, provider_account_id, scopes,
                 access_token_sealed, created_at, updated_at, kind, parent_id)
             VALUES ('acc_u', 'alice', 'x', '7', '[]', x'00', 1, 1, 'user', 'acc_9')",
            [],
        );
        assert!(user_with_parent.is_err(), "a user has no parent");
    }

    #[tokio::test]
    async fn reads_see_commits_of_another_connection_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.meta_get("k").await.unwrap(), None);
        let other = Connection::open(&path).unwrap();
        for i in 0..200 {
            other
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('k', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [i.to_string()],
                )
                .unwrap();
            assert_eq!(store.meta_get("k").await.unwrap(), Some(i.to_string()));
        }
    }

    /// A kept app is never older than the last commit of another connection (as the CLI
    /// makes them): created, renamed and deleted 100 times over, each read sees the change.
    #[tokio::test]
    async fn kept_apps_follow_every_commit_of_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).unwrap();
        let alice = Owner::parse("owner", "alice").unwrap();
        let other = Connection::open(&path).unwrap();
        let id = AppId::parse(&format!("oa_{}", "a".repeat(20))).unwrap();
        for i in 0..100 {
            assert!(
                store.get_app(&alice, &id).await.unwrap().is_none(),
                "round {i}"
            );
            other
                .execute(
                    "INSERT INTO oauth_apps (id, owner, provider, name, client_id, client_secret_sealed, scopes, created_at)
                     VALUES (?1, 'alice', 'x', 'first', 'c', x'00', '[]', 1)",
                    [id.as_str()],
                )
                .unwrap();
            let app = store.get_app(&alice, &id).await.unwrap().expect("created");
            assert_eq!(app.name, "first", "round {i}");
            assert_eq!(
                store.get_app(&alice, &id).await.unwrap().unwrap().name,
                "first"
            );
            other
                .execute("UPDATE oauth_apps SET name = ?1", [format!("renamed {i}")])
                .unwrap();
            let app = store
                .get_app(&alice, &id)
                .await
                .unwrap()
                .expect("still there");
            assert_eq!(app.name, format!("renamed {i}"));
            other.execute("DELETE FROM oauth_apps", []).unwrap();
        }
    }

    /// The read version stays while nothing is committed, and changes with every commit by
    /// another connection (as the CLI makes them) and by the store's own writes, 200 times
    /// over; what is read after it sees the commit. Another store's connection never gives
    /// an equal version.
    #[tokio::test]
    async fn the_read_version_changes_with_every_commit_of_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).unwrap();
        let alice = Owner::parse("owner", "alice").unwrap();
        let other = Connection::open(&path).unwrap();
        assert!(store.list_apps(&alice, None).await.unwrap().is_empty());
        let mut last = store.read_version().await.unwrap().expect("SQLite tells");
        let mut seen = std::collections::HashSet::from([last]);
        for i in 0..200 {
            let again = store.read_version().await.unwrap().unwrap();
            assert_eq!(last, again, "nothing committed: the same version");
            other
                .execute(
                    "INSERT INTO oauth_apps (id, owner, provider, name, client_id, client_secret_sealed, scopes, created_at)
                     VALUES (?1, 'alice', 'x', ?1, 'c', x'00', '[]', ?2)",
                    rusqlite::params![format!("oa_{i}"), i as i64],
                )
                .unwrap();
            let now = store.read_version().await.unwrap().unwrap();
            assert!(seen.insert(now), "commit {i}: a version seen before");
            assert_eq!(
                store.list_apps(&alice, None).await.unwrap().len(),
                i + 1,
                "commit {i} was not seen"
            );
            last = now;
        }
        other.execute("DELETE FROM oauth_apps", []).unwrap();
        assert_ne!(store.read_version().await.unwrap().unwrap(), last);
        assert!(store.list_apps(&alice, None).await.unwrap().is_empty());
        // The store's own writes go through other connections than its reads.
        let before = store.read_version().await.unwrap().unwrap();
        store.meta_init("k", "v").await.unwrap();
        assert_ne!(store.read_version().await.unwrap().unwrap(), before);
        // Another store on the same file: its own connection, never an equal version.
        let twin = SqliteStore::open(&path).unwrap();
        let here = store.read_version().await.unwrap().unwrap();
        assert_ne!(twin.read_version().await.unwrap().unwrap(), here);
    }

    #[tokio::test]
    async fn a_failed_write_transaction_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let alice = Owner::parse("owner", "alice").unwrap();
        let app = |id: &str, name: &str| AppRecord {
            id: id.into(),
            owner: "alice".into(),
            provider: "x".parse().unwrap(),
            name: name.into(),
            client_id: "c".into(),
            client_secret_sealed: vec![1],
            scopes: vec![],
            created_at: Timestamp::from_unix(1),
            credentials_error: None,
            credentials_error_at: None,
            updated_at: Timestamp::from_unix(1),
            last_check: None,
            user_agent: None,
            website: None,
        };
        let (first, dup) = (app("oa_1", "same"), app("oa_2", "same"));
        let result = store
            .write(move |tx| {
                Box::pin(async move {
                    tx.insert_app(&first).await?;
                    tx.insert_app(&dup).await
                })
            })
            .await;
        assert!(matches!(result, Err(Error::Conflict(_))), "{result:?}");
        assert!(store.list_apps(&alice, None).await.unwrap().is_empty());
    }

    /// A write whose work panics hands its connection back to the pool rolled back: an open
    /// transaction would hold the write lock, and every later write would wait it out and fail.
    #[tokio::test]
    async fn a_write_that_panics_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let result = store
            .write(|tx| {
                Box::pin(async move {
                    tx.meta_set("k", "half").await?;
                    panic!("the work failed half-way");
                    #[allow(unreachable_code)]
                    Ok(())
                })
            })
            .await;
        assert!(matches!(result, Err(Error::Internal(_))), "{result:?}");
        for i in 0..10 {
            let value = i.to_string();
            store
                .write(move |tx| Box::pin(async move { tx.meta_set("k", &value).await }))
                .await
                .unwrap();
        }
        assert_eq!(store.meta_get("k").await.unwrap().as_deref(), Some("9"));
    }

    #[tokio::test]
    async fn an_apps_last_check_reads_back_as_written_and_an_update_can_clear_it() {
        use crate::domain::{CheckResult, CheckSource, CheckStatus};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let alice = Owner::parse("owner", "alice").unwrap();
        let id = AppId::generate();
        let record = AppRecord {
            id: id.clone(),
            owner: "alice".into(),
            provider: "x".parse().unwrap(),
            name: "App".into(),
            client_id: "c".into(),
            client_secret_sealed: vec![1],
            scopes: vec!["users.read".into()],
            created_at: Timestamp::from_unix(1),
            credentials_error: None,
            credentials_error_at: None,
            updated_at: Timestamp::from_unix(1),
            last_check: None,
            user_agent: None,
            website: None,
        };
        let check = AppCheck {
            checked_at: Timestamp::from_unix(1_800_000_000),
            source: CheckSource::Refresh,
            checks: vec![CheckResult {
                name: "client_credentials".into(),
                status: CheckStatus::Failed,
                message: "invalid_client: \"quoted\" \u{1F980}".into(),
            }],
        };
        let (row, written) = (record.clone(), check.clone());
        store
            .write(move |tx| {
                Box::pin(async move {
                    tx.insert_app(&row).await?;
                    tx.set_app_last_check(&row.id, &written).await
                })
            })
            .await
            .unwrap();
        let read = store.get_app(&alice, &id).await.unwrap().unwrap();
        assert_eq!(read.last_check.as_ref(), Some(&check));
        assert_eq!(check.outcome(), CheckStatus::Failed);
        let mut cleared = read.clone();
        cleared.last_check = None;
        store
            .write(move |tx| Box::pin(async move { tx.update_app(&cleared).await }))
            .await
            .unwrap();
        assert!(
            store
                .get_app(&alice, &id)
                .await
                .unwrap()
                .unwrap()
                .last_check
                .is_none()
        );
    }

    /// The queries that grow with the database each use their index, read from the very SQL
    /// the store runs: a dropped or changed index fails here, not in production at a million
    /// rows. (`benches/scale.rs` times them on a big database.)
    #[test]
    fn hot_queries_use_their_indexes() {
        use rusqlite::types::Value::{Integer, Null, Text};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let text = |s: &str| Text(s.to_owned());
        // (what, SQL, parameters as the store binds them, the index it must use)
        let queries = [
            (
                "an owner's apps",
                apps::LIST_SQL.as_str(),
                vec![text("alice"), Null],
                "USING INDEX oauth_apps_by_owner (owner=?)",
            ),
            (
                "a page of an owner's accounts",
                accounts::PAGE_SQL.as_str(),
                vec![
                    text("alice"),
                    Integer(0),
                    Null,
                    Null,
                    Integer(101),
                    Null,
                    Null,
                ],
                "USING COVERING INDEX accounts_listed (owner=? AND seq>?)",
            ),
            (
                "a user account by its identity (each connect)",
                accounts::FIND_SQL,
                vec![text("alice"), text("x"), text("42")],
                "USING INDEX accounts_identity (owner=? AND provider=? AND provider_account_id=? AND <expr>=?)",
            ),
            (
                "how many accounts use an app",
                accounts::COUNT_OF_APP_SQL,
                vec![text("oa_1"), text("alice")],
                "USING COVERING INDEX accounts_by_app (oauth_app_id=? AND owner=? AND parent_id=?)",
            ),
            (
                "the accounts that use an app",
                accounts::IDS_OF_APP_SQL,
                vec![text("oa_1"), text("alice")],
                "USING INDEX accounts_by_app (oauth_app_id=? AND owner=? AND parent_id=?)",
            ),
            (
                "an app's accounts made due (its credentials changed)",
                accounts::MAKE_DUE_FOR_APP_SQL,
                vec![text("oa_1"), Integer(1)],
                "USING INDEX accounts_by_app (oauth_app_id=?)",
            ),
            (
                "one of an owner's accounts",
                accounts::GET_SQL.as_str(),
                vec![text("alice"), text("acc_1")],
                "USING INDEX sqlite_autoindex_accounts_1 (id=?)",
            ),
            (
                "the refresher's due accounts",
                accounts::DUE_SQL,
                vec![Integer(1_800_000_000), Integer(200)],
                "USING COVERING INDEX accounts_due (next_refresh_at>? AND next_refresh_at<?)",
            ),
            (
                "an account's children",
                accounts::CHILDREN_SQL.as_str(),
                vec![text("acc_1")],
                "USING INDEX accounts_by_parent (parent_id=?)",
            ),
            (
                "the accounts by provider and status (a scrape)",
                accounts::COUNT_SQL,
                vec![],
                "SCAN accounts USING COVERING INDEX accounts_by_provider_status",
            ),
            (
                "the webhook backlog (a scrape)",
                outbox::BACKLOG_SQL,
                vec![],
                "SCAN webhook_outbox USING INDEX webhook_outbox_due",
            ),
            (
                "the events no sender took (a server without a webhook URL)",
                outbox::UNSENT_SQL,
                vec![
                    Integer(1_800_000_000),
                    Integer(1_800_000_000),
                    Integer(1_800_000_000),
                    Integer(500),
                ],
                "USING INDEX webhook_outbox_due (next_attempt_at<?)",
            ),
        ];
        for (what, sql, params, index) in queries {
            let plan = store
                .read(|c| {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(params), |r| {
                            r.get::<_, String>(3)
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(rows.join("; "))
                })
                .unwrap();
            assert!(plan.contains(index), "{what}: {plan}");
            assert!(
                !plan.contains("TEMP B-TREE"),
                "{what} sorts instead of reading in index order: {plan}"
            );
        }
    }

    /// Migration 13 rebuilds `accounts` around `seq`: every row keeps its rowid as its `seq`
    /// (so cursors handed out before still work) and every column, children included.
    #[test]
    fn migration_13_keeps_every_account_and_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v12.db");
        let mut conn = Connection::open(&path).unwrap();
        let mut upto_12 = migrations_list();
        upto_12.truncate(12);
        Migrations::new(upto_12).to_latest(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (rowid, id, owner, provider, oauth_app_id, provider_account_id,
                 username, display_name, scopes, status, status_reason, access_token_sealed,
                 refresh_token_sealed, expires_at, refresh_expires_at, reauth_by,
                 token_issued_at, next_refresh_at, refresh_failures, refresh_lease_until,
                 refresh_lease_holder, warned_for, created_at, updated_at, kind, parent_id, tasks)
             VALUES (4, 'acc_4', 'alice', 'facebook', 'oa_1', '42', 'u', 'U', '[\"a\"]',
                     'expiring', 'soon', x'0102', x'03', 100, 200, 300, 50, 90, 2, 95, 'r1',
                     300, 10, 11, 'user', NULL, NULL),
                    (17, 'acc_17', 'alice', 'facebook', NULL, 'page-1', NULL, 'P', '[]',
                     'active', NULL, x'04', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL,
                     NULL, 12, 12, 'page', 'acc_4', '[\"CREATE_CONTENT\"]'),
                    (30, 'acc_30', 'bob', 'x', NULL, '7', NULL, NULL, '[]', 'active', NULL,
                     x'05', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, 13, 13,
                     'user', NULL, NULL);",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let alice = Owner::parse("owner", "alice").unwrap();
        let seqs: Vec<(i64, String)> = store
            .read(|c| {
                let mut stmt = c.prepare("SELECT seq, id FROM accounts ORDER BY seq")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(
            seqs,
            [
                (4, "acc_4".into()),
                (17, "acc_17".into()),
                (30, "acc_30".into())
            ]
        );
        // A cursor from before the migration (the rowid 4) still starts after acc_4.
        let page = store
            .read(|c| accounts::page(c, &alice, &AccountFilter::default(), Some(4), 10))
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, "acc_17");
        assert_eq!(page.items[0].parent_id.as_deref(), Some("acc_4"));
        assert_eq!(
            page.items[0].tasks.as_deref(),
            Some(&["CREATE_CONTENT".to_owned()][..])
        );
        let user = store
            .read(|c| accounts::by_id(c, &"acc_4".into()))
            .unwrap()
            .unwrap();
        assert_eq!(user.access_token_sealed, [1, 2]);
        assert_eq!(user.refresh_token_sealed.as_deref(), Some(&[3][..]));
        assert_eq!(user.status, AccountStatus::Expiring);
        assert_eq!(user.status_reason.as_deref(), Some("soon"));
        assert_eq!(user.scopes, ["a"]);
        assert_eq!(
            [user.expires_at, user.refresh_expires_at, user.reauth_by],
            [100, 200, 300].map(|t| Some(Timestamp::from_unix(t)))
        );
        assert_eq!(user.next_refresh_at, Some(Timestamp::from_unix(90)));
        assert_eq!(user.refresh_failures, 2);
        assert_eq!(user.warned_for, Some(Timestamp::from_unix(300)));
        // New accounts come after the highest position, as before.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO accounts (id, owner, provider, provider_account_id, scopes,
                 access_token_sealed, created_at, updated_at)
             VALUES ('acc_new', 'alice', 'x', '9', '[]', x'00', 14, 14)",
            [],
        )
        .unwrap();
        let next: i64 = conn
            .query_row("SELECT seq FROM accounts WHERE id = 'acc_new'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(next, 31);
    }

    #[tokio::test]
    async fn migration_11_makes_the_one_key_key_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8.db");
        let mut conn = Connection::open(&path).unwrap();
        let mut upto_10 = migrations_list();
        upto_10.truncate(10);
        Migrations::new(upto_10).to_latest(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('master_key_check', 'abc123')",
            [],
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let keys = store.master_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!((keys[0].id, keys[0].check_value.as_str()), (1, "abc123"));
        assert_eq!(keys[0].retired_at, None);
        assert_eq!(store.meta_get("master_key_check").await.unwrap(), None);
    }

    /// Values are counted and selected by the key their first bytes name, whatever the
    /// layout version, and a re-seal only replaces the value it read.
    #[tokio::test]
    async fn sealed_values_are_counted_and_replaced_by_key() {
        use crate::crypto::KeyId;
        use crate::crypto::seal::prefixes_of;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let v1 = [&[1u8][..], &[7; 40]].concat();
        let v2_key1 = [&[2u8, 0, 0, 0, 1][..], &[7; 40]].concat();
        let v2_key2 = [&[2u8, 0, 0, 0, 2][..], &[7; 40]].concat();
        for (i, sealed) in [&v1, &v2_key1, &v2_key2].iter().enumerate() {
            conn.execute(
                "INSERT INTO oauth_apps (id, owner, provider, name, client_id, client_secret_sealed, scopes, created_at)
                 VALUES (?1, 'alice', 'x', ?1, 'c', ?2, '[]', 1)",
                params![format!("oa_{i}"), sealed],
            )
            .unwrap();
        }
        // A Page without its own token holds an empty value: not a sealed value at all.
        conn.execute(
            "INSERT INTO accounts (id, owner, provider, provider_account_id, scopes,
                 access_token_sealed, created_at, updated_at)
             VALUES ('acc_1', 'alice', 'x', '42', '[]', x'', 1, 1)",
            [],
        )
        .unwrap();
        let key = |n| prefixes_of(KeyId::new(n).unwrap());
        let mut conn = store.pool.get().unwrap();
        let mut tx = SqliteTx::begin(&mut conn).unwrap();
        let counts = tx.count_sealed(&[key(1), key(2), key(3)]).await.unwrap();
        assert_eq!(counts[0].column, SealedColumn::AppClientSecret);
        assert_eq!(
            (counts[0].total, counts[0].by_key.clone()),
            (3, vec![2, 1, 0])
        );
        assert_eq!(counts[1].total, 0, "{counts:?}");

        let first = tx
            .sealed_rows(SealedColumn::AppClientSecret, 0, &key(1), 1)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].id.as_str(), first[0].provider.as_str()),
            ("oa_0", "x")
        );
        let rest = tx
            .sealed_rows(SealedColumn::AppClientSecret, first[0].rowid, &key(1), 10)
            .await
            .unwrap();
        assert_eq!(
            rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["oa_1"]
        );

        assert!(
            !tx.replace_sealed(SealedColumn::AppClientSecret, "oa_0", &v2_key1, &v2_key2)
                .await
                .unwrap(),
            "a value that changed since it was read is left alone"
        );
        assert!(
            tx.replace_sealed(SealedColumn::AppClientSecret, "oa_0", &v1, &v2_key2)
                .await
                .unwrap()
        );
        let counts = tx.count_sealed(&[key(1), key(2)]).await.unwrap();
        assert_eq!(counts[0].by_key, [1, 2]);
    }

    #[tokio::test]
    async fn open_twice_and_meta_init_keeps_first_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        assert_eq!(a.meta_init("k", "one").await.unwrap(), "one");
        assert_eq!(b.meta_init("k", "two").await.unwrap(), "one");
    }
}

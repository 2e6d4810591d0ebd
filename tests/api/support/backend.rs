//! Which database the tests run on, chosen by the environment:
//!
//! - `DRAVO_TEST_BACKEND` unset or `sqlite`: the SQLite file `dravo.db` in each test's temp dir.
//! - `DRAVO_TEST_BACKEND=postgres`: the PostgreSQL server at `DRAVO_TEST_POSTGRES_URL`, one
//!   schema per temp dir. The schema's name is derived from the dir's path, so everything
//!   pointed at one dir (`test_config`, `dravo_cmd`, a `dravo serve` spawned there) lands on
//!   the same schema without being told.
//!
//! `Db` reads and writes a test's rows directly on either backend, for tests that inspect or
//! arrange what is stored.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// The backend every test of this process runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The server's URL (without a schema).
    Postgres(String),
}

/// The backend chosen by `DRAVO_TEST_BACKEND` (read once).
pub fn backend() -> &'static Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        match std::env::var("DRAVO_TEST_BACKEND").ok().as_deref() {
            None | Some("") | Some("sqlite") => Backend::Sqlite,
            Some("postgres") => match std::env::var("DRAVO_TEST_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => Backend::Postgres(url),
                _ => panic!(
                    "DRAVO_TEST_BACKEND=postgres needs DRAVO_TEST_POSTGRES_URL (postgres://USER@HOST:PORT/DATABASE of a throwaway cluster; `.ci/postgres start DIR` makes one)"
                ),
            },
            Some(other) => {
                panic!("DRAVO_TEST_BACKEND is `{other}`: write `sqlite` (the default) or `postgres`")
            }
        }
    })
}

pub fn is_postgres() -> bool {
    matches!(backend(), Backend::Postgres(_))
}

/// True (and says so) when the tests run on PostgreSQL: a test about SQLite itself (its
/// files, pragmas, backups) returns early with `if sqlite_only("why") { return; }`.
pub fn sqlite_only(why: &str) -> bool {
    let skip = is_postgres();
    if skip {
        println!("skipped on PostgreSQL: {why}");
    }
    skip
}

/// The schema the temp dir `dir` uses: `t_` and 16 hex digits of SHA-256 of its path.
pub fn schema_for(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    // The same dir named two ways (relative, through a symlink) must give one schema.
    let path = std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf());
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("t_{hex}")
}

/// `url` with every connection's `search_path` set to `schema`.
pub fn url_with_schema(url: &str, schema: &str) -> String {
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}options=-csearch_path%3D{schema}")
}

/// The database URL for the temp dir `dir` when the tests run on PostgreSQL (its schema
/// created), else `None`.
pub fn database_url_for(dir: &Path) -> Option<String> {
    let Backend::Postgres(url) = backend() else {
        return None;
    };
    let schema = schema_for(dir);
    create_schema(url, &schema);
    Some(url_with_schema(url, &schema))
}

/// Creates `schema` unless this process did already.
fn create_schema(url: &str, schema: &str) {
    static CREATED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut created = CREATED.get_or_init(Default::default).lock().unwrap();
    if created.contains(schema) {
        return;
    }
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
    on_postgres(url, move |client| async move {
        client.batch_execute(&sql).await
    })
    .unwrap_or_else(|e| panic!("cannot create the test schema {schema}: {e}"));
    created.insert(schema.to_owned());
}

/// The PostgreSQL server of `DRAVO_TEST_POSTGRES_URL` (`.ci/postgres start DIR` prints one),
/// for tests that use PostgreSQL whatever `DRAVO_TEST_BACKEND` says; `None` (said) when it
/// is not set, which `DRAVO_REQUIRE_POSTGRES=1` (CI) turns into a failure.
pub fn postgres_server() -> Option<String> {
    match std::env::var("DRAVO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("DRAVO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "DRAVO_REQUIRE_POSTGRES=1 but DRAVO_TEST_POSTGRES_URL is not set"
            );
            println!("skipped on PostgreSQL: DRAVO_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A fresh, empty schema on the server `url`, and the URL whose connections use it.
pub fn fresh_schema(url: &str) -> String {
    let schema = format!("s_{}", super::random_suffix());
    let sql = format!("CREATE SCHEMA {schema}");
    on_postgres(url, move |client| async move {
        client.batch_execute(&sql).await
    })
    .unwrap_or_else(|e| panic!("cannot create a test schema: {e}"));
    url_with_schema(url, &schema)
}

/// Runs `sql` on `url`: the rows of a `SELECT`, else the statements in one batch (no rows).
pub fn psql(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let owned = sql.to_owned();
    on_postgres(url, move |client| async move {
        if owned.trim_start().to_uppercase().starts_with("SELECT") {
            client.query(&owned, &[]).await
        } else {
            client.batch_execute(&owned).await.map(|()| Vec::new())
        }
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs `work` with a fresh connection to `url`, on a thread of its own with its own
/// runtime: callers are often inside a tokio test, where blocking a worker is not allowed.
pub fn on_postgres<T, F, Fut>(url: &str, work: F) -> Result<T, tokio_postgres::Error>
where
    T: Send + 'static,
    F: FnOnce(tokio_postgres::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
{
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let driver = tokio::spawn(connection);
            let result = work(client).await;
            let _ = driver.await;
            result
        })
    })
    .join()
    .expect("the PostgreSQL helper thread panicked")
}

/// A value read from or written to a row, the same on both backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            other => panic!("expected an integer, found {other:?}"),
        }
    }

    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Val::Null => None,
            other => Some(other.int()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Val::Text(s) => s.clone(),
            other => panic!("expected text, found {other:?}"),
        }
    }

    pub fn opt_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            other => Some(other.text()),
        }
    }

    pub fn blob(&self) -> Vec<u8> {
        match self {
            Val::Blob(b) => b.clone(),
            other => panic!("expected bytes, found {other:?}"),
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_owned())
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&[u8]> for Val {
    fn from(v: &[u8]) -> Self {
        Val::Blob(v.to_vec())
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::Blob(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(*i),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
            Val::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl tokio_postgres::types::ToSql for Val {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        match self {
            Val::Null => Ok(tokio_postgres::types::IsNull::Yes),
            Val::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Val::Int(i) => i.to_sql(ty, out),
            Val::Text(s) => s.to_sql(ty, out),
            Val::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The test database of `db_path` (the SQLite file a test's config names; on PostgreSQL,
/// the schema of its dir), for reading and arranging rows directly as another process
/// would. Write SQL both backends accept, with `?1`, `?2`… placeholders.
pub struct Db {
    target: Target,
}

enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Db {
    pub fn open(db_path: &Path) -> Db {
        let dir = db_path.parent().expect("the database is in a dir");
        Db {
            target: match database_url_for(dir) {
                Some(url) => Target::Postgres(url),
                None => Target::Sqlite(db_path.to_owned()),
            },
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Val]) -> u64 {
        match &self.target {
            Target::Sqlite(path) => super::open_db(path)
                .execute(sql, rusqlite::params_from_iter(params))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                as u64,
            Target::Postgres(url) => {
                let (sql, params) = (dollar_placeholders(sql), params.to_vec());
                let shown = sql.clone();
                on_postgres(url, move |client| async move {
                    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        params.iter().map(|p| p as _).collect();
                    client.execute(&sql, &refs).await
                })
                .unwrap_or_else(|e| panic!("{shown}: {e}"))
            }
        }
    }

    /// Runs statements without parameters (several, separated by `;`).
    pub fn batch(&self, sql: &str) {
        match &self.target {
            Target::Sqlite(path) => super::open_db(path)
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Target::Postgres(url) => {
                let owned = sql.to_owned();
                on_postgres(url, move |client| async move {
                    client.batch_execute(&owned).await
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// Every row the query returns.
    pub fn query(&self, sql: &str, params: &[Val]) -> Vec<Vec<Val>> {
        match &self.target {
            Target::Sqlite(path) => {
                let conn = super::open_db(path);
                let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let columns = stmt.column_count();
                stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    (0..columns).map(|i| sqlite_val(r.get_ref(i)?)).collect()
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Target::Postgres(url) => {
                let (sql, params) = (dollar_placeholders(sql), params.to_vec());
                let shown = sql.clone();
                let rows = on_postgres(url, move |client| async move {
                    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        params.iter().map(|p| p as _).collect();
                    client.query(&sql, &refs).await
                })
                .unwrap_or_else(|e| panic!("{shown}: {e}"));
                rows.iter().map(postgres_vals).collect()
            }
        }
    }

    /// The one row the query returns.
    pub fn row(&self, sql: &str, params: &[Val]) -> Vec<Val> {
        let mut rows = self.query(sql, params);
        assert_eq!(rows.len(), 1, "{sql} returned {} rows", rows.len());
        rows.remove(0)
    }

    /// How many migrations the database says were applied to it (SQLite's `user_version`,
    /// PostgreSQL's `dravo_migrations` rows).
    pub fn schema_version(&self) -> i64 {
        match &self.target {
            Target::Sqlite(_) => self.value("PRAGMA user_version", &[]).int(),
            Target::Postgres(_) => self
                .value("SELECT count(*) FROM dravo_migrations", &[])
                .int(),
        }
    }

    /// Makes the database say `version` migrations were applied (as if a newer build had
    /// migrated it), or puts the true number back.
    pub fn set_schema_version(&self, version: i64) {
        match &self.target {
            Target::Sqlite(_) => self.batch(&format!("PRAGMA user_version = {version}")),
            Target::Postgres(_) => {
                self.execute(
                    "DELETE FROM dravo_migrations WHERE version > ?1",
                    &[version.into()],
                );
                self.execute(
                    "INSERT INTO dravo_migrations (version, applied_at)
                     SELECT g, 0 FROM generate_series(
                         (SELECT count(*) + 1 FROM dravo_migrations), ?1) AS g",
                    &[version.into()],
                );
            }
        }
    }

    /// The first column of the one row the query returns.
    pub fn value(&self, sql: &str, params: &[Val]) -> Val {
        self.row(sql, params).remove(0)
    }
}

fn sqlite_val(v: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<Val> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Text(f.to_string()),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
    })
}

fn postgres_vals(row: &tokio_postgres::Row) -> Vec<Val> {
    use tokio_postgres::types::Type;
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_().clone();
            let val = if ty == Type::INT8 {
                row.get::<_, Option<i64>>(i).map(Val::Int)
            } else if ty == Type::INT4 {
                row.get::<_, Option<i32>>(i).map(|v| Val::Int(v.into()))
            } else if ty == Type::BYTEA {
                row.get::<_, Option<Vec<u8>>>(i).map(Val::Blob)
            } else {
                row.get::<_, Option<String>>(i).map(Val::Text)
            };
            val.unwrap_or(Val::Null)
        })
        .collect()
}

/// `?1` → `$1`: SQLite takes both, PostgreSQL only the second.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

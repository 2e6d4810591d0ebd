//! The PostgreSQL backend: several Dravo nodes on one shared database (`database.url`).
//!
//! - One pool of connections per process (`deadpool-postgres` over `tokio-postgres`), TLS by
//!   rustls when the URL's `sslmode` asks for it (`prefer`, the default, tries it).
//! - Reads run on a pooled connection; nothing is memoised, since other nodes write without
//!   telling this one.
//! - A write transaction's work is synchronous code (see `store`), so it runs on the blocking
//!   pool and drives each statement to completion there. SQLite lets one writer in at a time;
//!   here transactions run side by side at READ COMMITTED, so every read-modify-write the
//!   core does through `WriteTx` locks what it read: rows by `FOR UPDATE`, an account identity
//!   not yet stored and the current sealing key by transaction-scoped advisory locks.
//! - Migrations run at start under an advisory lock, so nodes starting together apply each
//!   one once.

mod ids;
mod sql;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::{
    AccountFilter, AccountRecord, AppRecord, EventRecord, ExistingAccount, MasterKeyRecord,
    OutboxRecord, Page, PendingRecord, ReadVersion, SchemaVersion, SealedColumn, SealedCounts,
    SealedRow, Store, WebhookBacklog, WriteTx, WriteWork,
};
use crate::domain::{
    Account, AccountId, AccountStatus, AppCheck, AppId, Owner, Provider, Timestamp,
};
use crate::error::{Error, Result};
use crate::store::sealed_sql;

/// The migrations, in order; each runs once, in its own transaction.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_schema.sql"),
    include_str!("migrations/002_token_version.sql"),
];

/// Advisory lock keys (any 64-bit numbers, fixed so every node agrees).
const MIGRATION_LOCK: i64 = 0x4452_4156_4f5f_4d49; // "DRAVO_MI"
const KEYS_LOCK: i64 = 0x4452_4156_4f5f_4b45; // "DRAVO_KE"

/// How long a request waits for a pooled connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// The PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The URL's config, to open a connection outside the pool (`master_keys_now`).
    config: tokio_postgres::Config,
    /// Where the database is, for messages (no password).
    shown: Arc<str>,
    pool_wait: Option<prometheus_client::metrics::histogram::Histogram>,
}

/// Describes a database URL for people: host, port and database, never the password.
pub fn describe_url(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres://{host}:{port}/{db}")
}

/// True when `text` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// `describe_url` of a URL given as text; `fallback` when it does not parse.
pub fn describe_text(url: &str, fallback: &str) -> String {
    parse_url(url)
        .map(|c| describe_url(&c))
        .unwrap_or_else(|_| fallback.to_owned())
}

/// Parses `database.url`; the error never repeats the URL (it may carry a password).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>().map_err(|e| {
        Error::config(format!(
            "database.url is not a PostgreSQL URL ({e}): write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ))
    })
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_platform_verifier::BuilderVerifierExt;
    // The provider named here, not a process-wide default: reqwest uses the same one, and
    // nothing has to be installed first.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| Error::Internal(format!("cannot set up TLS to the database: {e}")))?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        pg_error("database error", err)
    }
}

/// A driver error as one line: the driver's own `Display` is only "db error" or "error
/// connecting to server", so the server's message (or the I/O cause) is added.
fn pg_error(context: impl std::fmt::Display, err: tokio_postgres::Error) -> Error {
    use std::error::Error as _;
    let detail = match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match err.source() {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        },
    };
    Error::Store {
        message: format!("{context}: {detail}"),
        source: Some(Box::new(err)),
    }
}

/// A failure to get a pooled connection, with the driver's cause when there is one.
fn pool_error(context: impl std::fmt::Display, err: deadpool_postgres::PoolError) -> Error {
    match err {
        deadpool_postgres::PoolError::Backend(e) => pg_error(context, e),
        other => Error::store_caused(context.to_string(), other),
    }
}

/// True when the error is a unique constraint violation.
fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl PgStore {
    /// Connects to the database `url`, checks that it answers, and applies any pending
    /// migrations. `pool_wait` observes each wait for a pooled connection.
    pub async fn connect(
        url: &str,
        pool_wait: Option<prometheus_client::metrics::histogram::Histogram>,
    ) -> Result<PgStore> {
        let config = parse_url(url)?;
        let shown: Arc<str> = describe_url(&config).into();
        let manager = Manager::from_config(
            config.clone(),
            tls()?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| Error::store_caused(format!("cannot use the database {shown}"), e))?;
        let store = PgStore {
            pool,
            config,
            shown,
            pool_wait,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// What the database at `url` holds, read without migrating or changing it (`dravo
    /// doctor`). A database Dravo never used has schema 0 and no keys.
    pub async fn inspect(url: &str) -> Result<super::DatabaseFacts> {
        let config = parse_url(url)?;
        let shown = describe_url(&config);
        let (client, connection) = config
            .connect(tls()?)
            .await
            .map_err(|e| pg_error(format!("cannot connect to the database {shown}"), e))?;
        let driver = tokio::spawn(connection);
        let exists = |table: &'static str| {
            let client = &client;
            async move {
                let row = client
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                    .await?;
                Ok::<bool, Error>(row.get(0))
            }
        };
        let count = |table: &'static str| {
            let client = &client;
            async move {
                let row = client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await?;
                Ok::<i64, Error>(row.get(0))
            }
        };
        let mut facts = super::DatabaseFacts {
            integrity: "ok".into(),
            schema_version: 0,
            latest_version: MIGRATIONS.len() as i64,
            keys: Vec::new(),
            sample_app: None,
            sealed: None,
            apps: 0,
            accounts: 0,
            bytes: 0,
        };
        if exists("dravo_migrations").await? {
            facts.schema_version = count("dravo_migrations").await?;
        }
        if facts.schema_version > 0 {
            facts.keys = client
                .query(&*sql::keys::LIST, &[])
                .await?
                .iter()
                .map(sql::keys::from_row)
                .collect::<Result<_>>()?;
            facts.sample_app = client
                .query_opt(&*sql::apps::FIRST, &[])
                .await?
                .map(|r| sql::apps::from_row(&r))
                .transpose()?;
            facts.apps = count("oauth_apps").await?;
            facts.accounts = count("accounts").await?;
            let size = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await?;
            facts.bytes = size.get::<_, i64>(0) as u64;
        }
        drop(client);
        let _ = driver.await;
        Ok(facts)
    }

    /// Where the database is, for messages.
    pub fn describe(&self) -> &str {
        &self.shown
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        let started = Instant::now();
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| pool_error(format!("cannot reach the database {}", self.shown), e))?;
        if let Some(h) = &self.pool_wait {
            h.observe(started.elapsed().as_secs_f64());
        }
        Ok(client)
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // `CREATE TABLE IF NOT EXISTS` would otherwise send a NOTICE that the driver logs on
        // every start (and every CLI command prints).
        tx.batch_execute("SET LOCAL client_min_messages = warning")
            .await?;
        // Held until this transaction ends: a node starting at the same moment waits here,
        // then finds the migrations applied.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS dravo_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             )",
        )
        .await?;
        let applied: i64 = tx
            .query_one("SELECT count(*) FROM dravo_migrations", &[])
            .await?
            .get(0);
        if applied as usize > MIGRATIONS.len() {
            return Err(Error::store(format!(
                "the database {} has {applied} migrations and this build knows {}: it was migrated by a newer Dravo; run that version",
                self.shown,
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            tx.batch_execute(sql).await.map_err(|e| {
                Error::store_caused(
                    format!(
                        "cannot migrate the database {} (step {})",
                        self.shown,
                        i + 1
                    ),
                    e,
                )
            })?;
            tx.execute(
                "INSERT INTO dravo_migrations (version, applied_at)
                 VALUES ($1, extract(epoch FROM now())::bigint)",
                &[&(i as i64 + 1)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs one query on a pooled connection and returns its rows.
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.query(&stmt, params).await?)
    }

    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.query_opt(&stmt, params).await?)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        self.row("SELECT 1", &[]).await.map(|_| ())
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .row("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?
            .map(|r| r.get(0)))
    }

    async fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await?;
        let row = client
            .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?;
        Ok(row.get(0))
    }

    async fn schema_version(&self) -> Result<SchemaVersion> {
        let found: i64 = self
            .row("SELECT count(*) FROM dravo_migrations", &[])
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0);
        Ok(SchemaVersion {
            found: found as usize,
            latest: MIGRATIONS.len(),
        })
    }

    async fn count_accounts(&self) -> Result<Vec<(Provider, AccountStatus, u64)>> {
        self.rows(sql::accounts::COUNT, &[])
            .await?
            .iter()
            .map(sql::accounts::count_row)
            .collect()
    }

    async fn webhook_backlog(&self) -> Result<WebhookBacklog> {
        let row = self
            .row(sql::outbox::BACKLOG, &[])
            .await?
            .ok_or_else(|| Error::Internal("count(*) returned no row".into()))?;
        sql::outbox::backlog_row(&row)
    }

    async fn master_keys(&self) -> Result<Vec<MasterKeyRecord>> {
        self.rows(&sql::keys::LIST, &[])
            .await?
            .iter()
            .map(sql::keys::from_row)
            .collect()
    }

    fn master_keys_now(&self) -> Result<Vec<MasterKeyRecord>> {
        // Called from synchronous code that may be on an async worker (even of a
        // single-threaded runtime): one short query on a connection of its own, on a thread
        // of its own, so no runtime is blocked and the pool is not touched from outside it.
        let (config, tls) = (self.config.clone(), tls()?);
        std::thread::scope(|s| {
            s.spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Internal(format!("cannot start a runtime: {e}")))?;
                runtime.block_on(async move {
                    let (client, connection) = config.connect(tls).await?;
                    let driver = tokio::spawn(connection);
                    let rows = client.query(&*sql::keys::LIST, &[]).await?;
                    drop(client);
                    let _ = driver.await;
                    rows.iter().map(sql::keys::from_row).collect()
                })
            })
            .join()
            .map_err(|_| Error::Internal("reading the master keys panicked".into()))?
        })
    }

    async fn count_sealed(&self, keys: Vec<Vec<Vec<u8>>>) -> Result<Vec<SealedCounts>> {
        let client = self.client().await?;
        let mut counts = Vec::new();
        for column in SealedColumn::ALL {
            let query = sealed_sql::count_query(&sql::keys::DIALECT, column, &keys);
            let row = client.query_one(&query, &[]).await?;
            counts.push(sealed_sql::counts(column, &row, keys.len())?);
        }
        Ok(counts)
    }

    /// Other nodes' commits give no signal short of asking the database, which is the round
    /// trip a reused read would save: nothing read is reused.
    async fn read_version(&self) -> Result<Option<ReadVersion>> {
        Ok(None)
    }

    async fn list_apps(&self, owner: &Owner, provider: Option<Provider>) -> Result<Vec<AppRecord>> {
        let rows = self
            .rows(
                &sql::apps::LIST,
                &[&owner.as_str(), &provider.map(Provider::as_str)],
            )
            .await?;
        rows.iter().map(sql::apps::from_row).collect()
    }

    async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>> {
        self.row(&sql::apps::GET, &[&owner.as_str(), &id.as_str()])
            .await?
            .map(|r| sql::apps::from_row(&r))
            .transpose()
    }

    async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.row(&sql::accounts::GET, &[&owner.as_str(), &id.as_str()])
            .await?
            .map(|r| sql::accounts::from_row(&r))
            .transpose()
    }

    async fn list_accounts_page(
        &self,
        owner: &Owner,
        filter: AccountFilter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Page<Account>> {
        let rows = self
            .rows(
                &sql::accounts::PAGE,
                &[
                    &owner.as_str(),
                    &after.unwrap_or(0),
                    &filter.provider.map(|p| p.as_str()),
                    &filter.status.map(|s| s.as_str()),
                    &(limit as i64 + 1),
                    &filter.kind.map(|k| k.as_str()),
                    &filter.parent_id.as_ref(),
                ],
            )
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, i64>(0)?,
                    sql::accounts::listed_from_row(r, 1)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_read(items, limit, |(seq, _)| *seq).map(|(_, a)| a))
    }

    async fn list_events(
        &self,
        owner: &Owner,
        account: &AccountId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page<EventRecord>> {
        let rows = self
            .rows(
                &sql::accounts::EVENTS,
                &[
                    &account.as_str(),
                    &owner.as_str(),
                    &before.unwrap_or(i64::MAX),
                    &(limit as i64 + 1),
                ],
            )
            .await?;
        let items = rows
            .iter()
            .map(sql::accounts::event_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_read(items, limit, |e| e.seq))
    }

    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.row(&sql::accounts::BY_ID, &[&id])
            .await?
            .map(|r| sql::accounts::from_row(&r))
            .transpose()
    }

    async fn due_accounts(&self, now: Timestamp, limit: usize) -> Result<Vec<AccountId>> {
        Ok(self
            .rows(sql::accounts::DUE, &[&now.unix(), &(limit as i64)])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn app_account_ids(&self, owner: &Owner, id: &AppId) -> Result<Vec<AccountId>> {
        Ok(self
            .rows(sql::accounts::IDS_OF_APP, &[&id.as_str(), &owner.as_str()])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn recent_webhooks(
        &self,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>> {
        self.rows(&sql::outbox::RECENT, &[&status, &(limit as i64)])
            .await?
            .iter()
            .map(sql::outbox::from_row)
            .collect()
    }

    async fn backup_into(&self, _target: &std::path::Path) -> Result<()> {
        Err(Error::config(format!(
            "`dravo backup` copies a SQLite database; {} is PostgreSQL: back it up with pg_dump (or your provider's snapshots), or copy it into a SQLite file with `dravo store copy`",
            self.shown
        )))
    }

    async fn export_rows(
        &self,
        table: &'static crate::store::copy::CopyTable,
        after: i64,
        limit: usize,
    ) -> Result<Vec<crate::store::copy::CopyRow>> {
        let query = sql::copy::export_query(table);
        let rows = if table.positioned {
            self.rows(&query, &[&after, &(limit as i64)]).await?
        } else {
            self.rows(&query, &[]).await?
        };
        rows.iter()
            .map(|r| sql::copy::export_row(table, r))
            .collect()
    }

    async fn count_rows(&self, table: &'static crate::store::copy::CopyTable) -> Result<u64> {
        let n: i64 = self
            .row(&format!("SELECT count(*) FROM {}", table.name), &[])
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0);
        Ok(n as u64)
    }

    async fn write_work(&self, work: WriteWork) -> Result<()> {
        let mut client = self.client().await?;
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let tx = handle.block_on(client.transaction())?;
            let mut write = PgTx {
                tx: &tx,
                handle: &handle,
                keys_lock: None,
            };
            work(&mut write)?;
            handle.block_on(tx.commit())?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("a database task failed: {e}")))?
    }
}

/// A write transaction in progress, driven from the blocking pool.
struct PgTx<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    handle: &'a tokio::runtime::Handle,
    /// How this transaction holds `KEYS_LOCK` so far.
    keys_lock: Option<KeysLock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeysLock {
    Shared,
    Exclusive,
}

impl PgTx<'_> {
    fn statement(&self, sql: &str) -> Result<Statement> {
        Ok(self.handle.block_on(self.tx.prepare_cached(sql))?)
    }

    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let stmt = self.statement(sql)?;
        Ok(self.handle.block_on(self.tx.execute(&stmt, params))?)
    }

    /// `execute`, keeping the driver's error (to tell a unique violation).
    fn execute_raw(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<std::result::Result<u64, tokio_postgres::Error>> {
        let stmt = self.statement(sql)?;
        Ok(self.handle.block_on(self.tx.execute(&stmt, params)))
    }

    fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let stmt = self.statement(sql)?;
        Ok(self.handle.block_on(self.tx.query(&stmt, params))?)
    }

    fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let stmt = self.statement(sql)?;
        Ok(self.handle.block_on(self.tx.query_opt(&stmt, params))?)
    }

    /// Takes `KEYS_LOCK` as `wanted` unless this transaction holds it already (shared or
    /// exclusive: a holder that only reads the keys does not need more).
    fn lock_keys(&mut self, wanted: KeysLock) -> Result<()> {
        match (self.keys_lock, wanted) {
            (Some(KeysLock::Exclusive), _) | (Some(KeysLock::Shared), KeysLock::Shared) => Ok(()),
            _ => {
                self.lock(KEYS_LOCK, wanted == KeysLock::Shared)?;
                self.keys_lock = Some(wanted);
                Ok(())
            }
        }
    }

    /// Takes a transaction-scoped advisory lock on `key` (shared or not).
    fn lock(&self, key: i64, shared: bool) -> Result<()> {
        let sql = if shared {
            "SELECT pg_advisory_xact_lock_shared($1)"
        } else {
            "SELECT pg_advisory_xact_lock($1)"
        };
        self.row(sql, &[&key]).map(|_| ())
    }
}

/// An advisory lock key for a text (an account identity): 64 bits of its SHA-256.
fn lock_key(parts: &[&str]) -> i64 {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn app_conflict(app: &AppRecord) -> Error {
    Error::Conflict(format!(
        "an OAuth app named `{}` already exists for provider {}",
        app.name, app.provider
    ))
}

impl WriteTx for PgTx<'_> {
    fn insert_app(&mut self, app: &AppRecord) -> Result<()> {
        let p = sql::apps::Params::of(app);
        match self.execute_raw(&sql::apps::INSERT, &p.insert())? {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(app_conflict(app)),
            Err(e) => Err(e.into()),
        }
    }

    fn delete_app(&mut self, owner: &Owner, id: &AppId) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM oauth_apps WHERE owner = $1 AND id = $2",
            &[&owner.as_str(), &id.as_str()],
        )? > 0)
    }

    fn get_app(&mut self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>> {
        self.row(&sql::apps::GET_FOR_UPDATE, &[&owner.as_str(), &id.as_str()])?
            .map(|r| sql::apps::from_row(&r))
            .transpose()
    }

    fn update_app(&mut self, app: &AppRecord) -> Result<bool> {
        let p = sql::apps::Params::of(app);
        match self.execute_raw(sql::apps::UPDATE, &p.update())? {
            Ok(n) => Ok(n > 0),
            Err(e) if is_unique_violation(&e) => Err(app_conflict(app)),
            Err(e) => Err(e.into()),
        }
    }

    fn count_app_accounts(&mut self, owner: &Owner, id: &AppId) -> Result<u64> {
        let row = self.row(
            sql::accounts::COUNT_OF_APP,
            &[&id.as_str(), &owner.as_str()],
        )?;
        Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0) as u64)
    }

    fn make_app_accounts_due(&mut self, app_id: &AppId, now: Timestamp) -> Result<usize> {
        Ok(self.execute(sql::accounts::MAKE_DUE_FOR_APP, &[&app_id, &now.unix()])? as usize)
    }

    fn find_account(
        &mut self,
        owner: &Owner,
        provider: Provider,
        provider_account_id: &str,
    ) -> Result<Option<ExistingAccount>> {
        // Two connects of one account at once: the second waits here for the first to
        // commit, then finds its row (under SQLite one writer at a time did the same).
        self.lock(
            lock_key(&[owner.as_str(), provider.as_str(), provider_account_id]),
            false,
        )?;
        self.row(
            sql::accounts::FIND,
            &[&owner.as_str(), &provider.as_str(), &provider_account_id],
        )?
        .map(|r| {
            Ok(ExistingAccount {
                id: r.try_get(0)?,
                created_at: Timestamp::from_unix(r.try_get(1)?),
            })
        })
        .transpose()
    }

    fn put_account(&mut self, account: &AccountRecord) -> Result<()> {
        let p = sql::accounts::Params::of(account);
        self.execute(&sql::accounts::PUT, &p.all())?;
        Ok(())
    }

    fn account_by_id(&mut self, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.row(&sql::accounts::BY_ID_FOR_UPDATE, &[&id])?
            .map(|r| sql::accounts::from_row(&r))
            .transpose()
    }

    fn children_of(&mut self, parent_id: &AccountId) -> Result<Vec<AccountRecord>> {
        self.rows(&sql::accounts::CHILDREN_FOR_UPDATE, &[&parent_id])?
            .iter()
            .map(sql::accounts::from_row)
            .collect()
    }

    fn delete_account(&mut self, owner: &Owner, id: &AccountId) -> Result<bool> {
        let n = self.execute(
            "DELETE FROM accounts WHERE owner = $1 AND id = $2",
            &[&owner.as_str(), &id.as_str()],
        )?;
        self.execute(
            "DELETE FROM account_events WHERE owner = $1 AND account_id = $2",
            &[&owner.as_str(), &id.as_str()],
        )?;
        Ok(n > 0)
    }

    fn take_refresh_lease(
        &mut self,
        id: &AccountId,
        version: i64,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        Ok(self.execute(
            sql::accounts::TAKE_LEASE,
            &[&id, &holder, &until.unix(), &now.unix(), &version],
        )? > 0)
    }

    fn release_refresh_lease(&mut self, id: &AccountId, holder: &str) -> Result<()> {
        self.execute(
            "UPDATE accounts SET refresh_lease_until = NULL, refresh_lease_holder = NULL
             WHERE id = $1 AND refresh_lease_holder = $2",
            &[&id, &holder],
        )?;
        Ok(())
    }

    fn holds_refresh_lease(
        &mut self,
        id: &AccountId,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool> {
        Ok(self
            .row(
                "SELECT 1 FROM accounts
                 WHERE id = $1 AND refresh_lease_holder = $2 AND refresh_lease_until > $3",
                &[&id, &holder, &now.unix()],
            )?
            .is_some())
    }

    fn insert_event(&mut self, event: &EventRecord) -> Result<()> {
        let detail = event.detail.to_string();
        self.execute(
            "INSERT INTO account_events (id, account_id, owner, type, created_at, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &event.id,
                &event.account_id,
                &event.owner,
                &event.kind,
                &event.created_at.unix(),
                &detail,
            ],
        )?;
        self.execute(
            sql::accounts::TRIM_EVENTS,
            &[&event.account_id, &super::EVENTS_KEPT_PER_ACCOUNT],
        )?;
        Ok(())
    }

    fn enqueue_webhook(&mut self, event: &OutboxRecord) -> Result<()> {
        self.execute(
            "INSERT INTO webhook_outbox (id, type, owner, body, created_at, status, attempts,
                                         next_attempt_at, last_error, delivered_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &event.id,
                &event.kind,
                &event.owner,
                &event.body,
                &event.created_at.unix(),
                &event.status,
                &event.attempts,
                &event.next_attempt_at.map(Timestamp::unix),
                &event.last_error,
                &event.delivered_at.map(Timestamp::unix),
            ],
        )?;
        Ok(())
    }

    fn claim_due_webhook(
        &mut self,
        now: Timestamp,
        holder: &str,
        until: Timestamp,
    ) -> Result<Option<OutboxRecord>> {
        self.row(&sql::outbox::CLAIM, &[&now.unix(), &holder, &until.unix()])?
            .map(|r| sql::outbox::from_row(&r))
            .transpose()
    }

    fn extend_webhook_claim(&mut self, id: &str, holder: &str, until: Timestamp) -> Result<bool> {
        Ok(self.execute(sql::outbox::EXTEND_CLAIM, &[&id, &holder, &until.unix()])? == 1)
    }

    fn get_webhook(&mut self, id: &str) -> Result<Option<OutboxRecord>> {
        self.row(&sql::outbox::GET_FOR_UPDATE, &[&id])?
            .map(|r| sql::outbox::from_row(&r))
            .transpose()
    }

    fn webhook_delivered(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        at: Timestamp,
    ) -> Result<bool> {
        Ok(self.execute(
            sql::outbox::DELIVERED,
            &[&id, &holder, &attempts, &at.unix()],
        )? == 1)
    }

    fn webhook_attempt_failed(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        next: Option<Timestamp>,
        error: &str,
    ) -> Result<bool> {
        Ok(self.execute(
            sql::outbox::ATTEMPT_FAILED,
            &[&id, &holder, &attempts, &next.map(Timestamp::unix), &error],
        )? == 1)
    }

    fn requeue_webhook(&mut self, id: &str, now: Timestamp) -> Result<bool> {
        Ok(self.execute(sql::outbox::REQUEUE, &[&id, &now.unix()])? == 1)
    }

    fn prune_webhooks(&mut self, created_before: Timestamp, limit: usize) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted = self.execute(sql::outbox::PRUNE, &[&created_before.unix(), &limit])?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }

    fn give_up_unsent_webhooks(
        &mut self,
        created_before: Timestamp,
        due_before: Timestamp,
        now: Timestamp,
        error: &str,
        limit: usize,
    ) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let changed = self.execute(
            sql::outbox::GIVE_UP_UNSENT,
            &[
                &due_before.unix(),
                &created_before.unix(),
                &now.unix(),
                &limit,
                &error,
            ],
        )?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    fn set_app_credentials_error(
        &mut self,
        app_id: &AppId,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        self.execute(
            "UPDATE oauth_apps SET credentials_error = $2, credentials_error_at = $3 WHERE id = $1",
            &[&app_id, &error, &error.map(|_| at.unix())],
        )?;
        Ok(())
    }

    fn set_app_last_check(&mut self, app_id: &AppId, check: &AppCheck) -> Result<()> {
        let json = super::codec::last_check_json(check);
        self.execute(
            "UPDATE oauth_apps SET last_check = $2, last_check_at = $3 WHERE id = $1",
            &[&app_id, &json, &check.checked_at.unix()],
        )?;
        Ok(())
    }

    fn consume_state_nonce(
        &mut self,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        self.execute(
            "DELETE FROM oauth_state_nonces WHERE expires_at < $1",
            &[&now.unix()],
        )?;
        Ok(self.execute(
            "INSERT INTO oauth_state_nonces (nonce, expires_at) VALUES ($1, $2)
             ON CONFLICT (nonce) DO NOTHING",
            &[&nonce, &expires_at.unix()],
        )? == 1)
    }

    fn insert_pending(&mut self, p: &PendingRecord) -> Result<()> {
        self.execute(
            "INSERT INTO pending_connections
                 (id, owner, provider, oauth_app_id, confirm_hash, sealed, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET
                 oauth_app_id = excluded.oauth_app_id, confirm_hash = excluded.confirm_hash,
                 sealed = excluded.sealed, issued_at = excluded.issued_at,
                 expires_at = excluded.expires_at
             WHERE pending_connections.owner = excluded.owner",
            &[
                &p.id,
                &p.owner,
                &p.provider.as_str(),
                &p.oauth_app_id,
                &p.confirm_hash,
                &p.sealed,
                &p.issued_at.unix(),
                &p.expires_at.unix(),
            ],
        )?;
        Ok(())
    }

    fn pending_connection(
        &mut self,
        owner: &Owner,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<Option<PendingRecord>> {
        self.row(
            &format!(
                "SELECT {} FROM pending_connections
                 WHERE id = $1 AND owner = $2 AND expires_at > $3 FOR UPDATE",
                crate::store::codec::PENDING_COLUMNS
            ),
            &[&id.as_str(), &owner.as_str(), &now.unix()],
        )?
        .map(|r| crate::store::codec::pending(&r))
        .transpose()
    }

    fn delete_pending(&mut self, id: &AccountId) -> Result<bool> {
        Ok(self.execute("DELETE FROM pending_connections WHERE id = $1", &[&id])? == 1)
    }

    fn purge_expired_pending(&mut self, now: Timestamp) -> Result<usize> {
        Ok(self.execute(
            "DELETE FROM pending_connections WHERE expires_at <= $1",
            &[&now.unix()],
        )? as usize)
    }

    fn master_keys(&mut self) -> Result<Vec<MasterKeyRecord>> {
        // Read to decide what to record (the first keys of a fresh database, a rotation's
        // next id): exclusive, so two processes initialising one database at once do not both
        // find none and both record key 1. A transaction already holding the lock shared (a
        // sealing writer reloading keys) only reads.
        if self.keys_lock.is_none() {
            self.lock_keys(KeysLock::Exclusive)?;
        }
        self.rows(&sql::keys::LIST, &[])?
            .iter()
            .map(sql::keys::from_row)
            .collect()
    }

    fn current_key_id(&mut self) -> Result<Option<u32>> {
        // Shared: sealing writers run side by side, and a rotation recording a new key
        // (exclusive) waits for them; once it commits, every later writer seals with the new
        // key. This is what SQLite's one writer at a time gave for free.
        self.lock_keys(KeysLock::Shared)?;
        let row = self.row(
            "SELECT max(id) FROM master_keys WHERE retired_at IS NULL",
            &[],
        )?;
        Ok(row
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(|id| id as u32))
    }

    fn add_master_key(&mut self, key: &MasterKeyRecord) -> Result<()> {
        self.lock_keys(KeysLock::Exclusive)?;
        self.execute(
            "INSERT INTO master_keys (id, check_value, added_at, retired_at, accept_until)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &i64::from(key.id),
                &key.check_value,
                &key.added_at.unix(),
                &key.retired_at.map(Timestamp::unix),
                &key.accept_until.map(Timestamp::unix),
            ],
        )?;
        Ok(())
    }

    fn retire_master_key(&mut self, id: u32, at: Timestamp, accept_until: Timestamp) -> Result<()> {
        self.lock_keys(KeysLock::Exclusive)?;
        self.execute(
            "UPDATE master_keys SET retired_at = $2, accept_until = $3
             WHERE id = $1 AND retired_at IS NULL",
            &[&i64::from(id), &at.unix(), &accept_until.unix()],
        )?;
        Ok(())
    }

    fn count_sealed(&mut self, keys: &[Vec<Vec<u8>>]) -> Result<Vec<SealedCounts>> {
        let mut counts = Vec::new();
        for column in SealedColumn::ALL {
            let query = sealed_sql::count_query(&sql::keys::DIALECT, column, keys);
            let row = self
                .row(&query, &[])?
                .ok_or_else(|| Error::Internal("count(*) returned no row".into()))?;
            counts.push(sealed_sql::counts(column, &row, keys.len())?);
        }
        Ok(counts)
    }

    fn sealed_rows(
        &mut self,
        column: SealedColumn,
        after_rowid: i64,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<SealedRow>> {
        self.rows(
            &sealed_sql::page_query(&sql::keys::DIALECT, column, prefixes),
            &[&after_rowid, &(limit as i64)],
        )?
        .iter()
        .map(|r| sealed_sql::sealed_row(r))
        .collect()
    }

    fn replace_sealed(
        &mut self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let query = sealed_sql::replace_query(&sql::keys::DIALECT, column);
        Ok(self.execute(&query, &[&id, &old, &new])? == 1)
    }

    fn meta_get(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self
            .row("SELECT value FROM meta WHERE key = $1 FOR UPDATE", &[&key])?
            .map(|r| r.get(0)))
    }

    fn meta_set(&mut self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn meta_delete(&mut self, key: &str) -> Result<()> {
        self.execute("DELETE FROM meta WHERE key = $1", &[&key])?;
        Ok(())
    }

    fn import_rows(
        &mut self,
        table: &crate::store::copy::CopyTable,
        rows: &[crate::store::copy::CopyRow],
    ) -> Result<()> {
        let query = sql::copy::insert_query(table);
        for row in rows {
            let mut params = Vec::with_capacity(row.values.len() + 1);
            if let Some(position) = row.position {
                params.push(Box::new(position) as Box<dyn ToSql + Sync + Send>);
            }
            for ((_, kind), value) in table.columns.iter().zip(&row.values) {
                params.push(sql::copy::param(*kind, value)?);
            }
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            self.execute(&query, &refs)?;
        }
        if table.positioned {
            self.row(&sql::copy::resync_query(table), &[])?;
        }
        Ok(())
    }
}

//! The PostgreSQL backend: several Dravo nodes on one shared database (`database.url`).
//!
//! - One pool of connections per process (`deadpool-postgres` over `tokio-postgres`), TLS by
//!   rustls when the URL's `sslmode` asks for it (`prefer`, the default, tries it).
//! - Reads run on a pooled connection; nothing is memoised, since other nodes write without
//!   telling this one.
//! - A write transaction runs on the async runtime, one pooled connection awaiting each
//!   statement: no thread, runtime or connection of its own. SQLite lets one writer in at a time;
//!   here transactions run side by side at READ COMMITTED, so every read-modify-write the
//!   core does through `WriteTx` locks what it read: rows by `FOR UPDATE`, an account identity
//!   not yet stored and the current sealing key by transaction-scoped advisory locks.
//! - Migrations run at start under an advisory lock, so nodes starting together apply each
//!   one once.

mod accounts;
mod apps;
mod copy;
mod ids;
mod keys;
mod meta;
mod outbox;
mod pending;
mod rows;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::{
    AccountFilter, AccountRecord, AccountTx, AppRecord, AppTx, EventRecord, EventTx,
    ExistingAccount, KeyTx, MasterKeyRecord, MetaTx, OutboxRecord, Page, PendingRecord, PendingTx,
    ReadVersion, RegistrationRecord, SchemaVersion, SealedColumn, SealedCounts, SealedRow, Store,
    WebhookBacklog, WriteWork,
};
use crate::domain::{
    Account, AccountId, AccountStatus, AppCheck, AppId, Owner, Provider, Timestamp,
};
use crate::error::{Error, Result};
use crate::store::codec;
use crate::store::sealed_sql;
use crate::store::tables::{self};

/// The migrations, in order; each runs once, in its own transaction.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_schema.sql"),
    include_str!("migrations/002_token_version.sql"),
    include_str!("migrations/003_channel_and_location_kinds.sql"),
    include_str!("migrations/004_app_user_agent.sql"),
    include_str!("migrations/005_instance_registrations.sql"),
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
            config,
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
                .query(&*keys::LIST, &[])
                .await?
                .iter()
                .map(keys::from_row)
                .collect::<Result<_>>()?;
            facts.sample_app = client
                .query_opt(&*apps::FIRST, &[])
                .await?
                .map(|r| apps::from_row(&r))
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
        self.rows(accounts::COUNT, &[])
            .await?
            .iter()
            .map(accounts::count_row)
            .collect()
    }

    async fn webhook_backlog(&self) -> Result<WebhookBacklog> {
        let row = self
            .row(outbox::BACKLOG, &[])
            .await?
            .ok_or_else(|| Error::Internal("count(*) returned no row".into()))?;
        outbox::backlog_row(&row)
    }

    async fn master_keys(&self) -> Result<Vec<MasterKeyRecord>> {
        self.rows(&keys::LIST, &[])
            .await?
            .iter()
            .map(keys::from_row)
            .collect()
    }

    async fn count_sealed(&self, keys: Vec<Vec<Vec<u8>>>) -> Result<Vec<SealedCounts>> {
        let client = self.client().await?;
        let mut counts = Vec::new();
        for column in SealedColumn::ALL {
            let query = sealed_sql::count_query(&keys::DIALECT, column, &keys);
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
                &apps::LIST,
                &[&owner.as_str(), &provider.map(Provider::as_str)],
            )
            .await?;
        rows.iter().map(apps::from_row).collect()
    }

    async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>> {
        self.row(&apps::GET, &[&owner.as_str(), &id.as_str()])
            .await?
            .map(|r| apps::from_row(&r))
            .transpose()
    }

    async fn registration(
        &self,
        app_id: &AppId,
        server: &str,
    ) -> Result<Option<RegistrationRecord>> {
        self.row(&apps::REGISTRATION, &[&app_id.as_str(), &server])
            .await?
            .map(|r| codec::registration(&r))
            .transpose()
    }

    async fn registrations(
        &self,
        owner: &Owner,
        app_id: &AppId,
    ) -> Result<Vec<RegistrationRecord>> {
        let rows = self
            .rows(
                &apps::REGISTRATIONS_OF,
                &[&owner.as_str(), &app_id.as_str()],
            )
            .await?;
        rows.iter().map(|r| codec::registration(r)).collect()
    }

    async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.row(&accounts::GET, &[&owner.as_str(), &id.as_str()])
            .await?
            .map(|r| accounts::from_row(&r))
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
                &accounts::PAGE,
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
            .map(|r| Ok((r.try_get::<_, i64>(0)?, accounts::listed_from_row(r, 1)?)))
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
                &accounts::EVENTS,
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
            .map(accounts::event_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_read(items, limit, |e| e.seq))
    }

    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.row(&accounts::BY_ID, &[&id])
            .await?
            .map(|r| accounts::from_row(&r))
            .transpose()
    }

    async fn due_accounts(&self, now: Timestamp, limit: usize) -> Result<Vec<AccountId>> {
        Ok(self
            .rows(accounts::DUE, &[&now.unix(), &(limit as i64)])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn app_account_ids(&self, owner: &Owner, id: &AppId) -> Result<Vec<AccountId>> {
        Ok(self
            .rows(accounts::IDS_OF_APP, &[&id.as_str(), &owner.as_str()])
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
        self.rows(&outbox::RECENT, &[&status, &(limit as i64)])
            .await?
            .iter()
            .map(outbox::from_row)
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
        table: &'static crate::store::tables::Table,
        after: i64,
        limit: usize,
    ) -> Result<Vec<crate::store::copy::CopyRow>> {
        let query = copy::export_query(table);
        let rows = if table.positioned {
            self.rows(&query, &[&after, &(limit as i64)]).await?
        } else {
            self.rows(&query, &[]).await?
        };
        rows.iter().map(|r| copy::export_row(table, r)).collect()
    }

    async fn count_rows(&self, table: &'static crate::store::tables::Table) -> Result<u64> {
        let n: i64 = self
            .row(&format!("SELECT count(*) FROM {}", table.name), &[])
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0);
        Ok(n as u64)
    }

    async fn write_work(&self, work: WriteWork) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut write = PgTx {
            tx: &tx,
            keys_lock: None,
        };
        work(&mut write).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A write transaction in progress; an error or a dropped future rolls it back (the
/// driver's `Transaction` does on drop).
struct PgTx<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    /// How this transaction holds `KEYS_LOCK` so far.
    keys_lock: Option<KeysLock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeysLock {
    Shared,
    Exclusive,
}

impl PgTx<'_> {
    async fn statement(&self, sql: &str) -> Result<Statement> {
        Ok(self.tx.prepare_cached(sql).await?)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let stmt = self.statement(sql).await?;
        Ok(self.tx.execute(&stmt, params).await?)
    }

    /// `execute`, keeping the driver's error (to tell a unique violation).
    async fn execute_raw(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<std::result::Result<u64, tokio_postgres::Error>> {
        let stmt = self.statement(sql).await?;
        Ok(self.tx.execute(&stmt, params).await)
    }

    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let stmt = self.statement(sql).await?;
        Ok(self.tx.query(&stmt, params).await?)
    }

    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let stmt = self.statement(sql).await?;
        Ok(self.tx.query_opt(&stmt, params).await?)
    }

    /// Takes `KEYS_LOCK` as `wanted` unless this transaction holds it already (shared or
    /// exclusive: a holder that only reads the keys does not need more).
    async fn lock_keys(&mut self, wanted: KeysLock) -> Result<()> {
        match (self.keys_lock, wanted) {
            (Some(KeysLock::Exclusive), _) | (Some(KeysLock::Shared), KeysLock::Shared) => Ok(()),
            _ => {
                self.lock(KEYS_LOCK, wanted == KeysLock::Shared).await?;
                self.keys_lock = Some(wanted);
                Ok(())
            }
        }
    }

    /// Takes a transaction-scoped advisory lock on `key` (shared or not).
    async fn lock(&self, key: i64, shared: bool) -> Result<()> {
        let sql = if shared {
            "SELECT pg_advisory_xact_lock_shared($1)"
        } else {
            "SELECT pg_advisory_xact_lock($1)"
        };
        self.row(sql, &[&key]).await.map(|_| ())
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

//! The core: every operation Dravo offers, called by both the HTTP handlers and the CLI.
//! Handlers and commands only translate their input into these calls and the results back.
//! OAuth apps live here; the connect flow in `connect`, connected accounts in `accounts`.

mod accounts;
mod app_checks;
pub mod backup;
mod children;
mod connect;
pub mod doctor;
mod events;
pub mod healthcheck;
pub mod init;
pub mod key_file;
pub mod keys;
mod lifecycle;
mod monitoring;
mod pending;
mod seal_contexts;
mod shared;
pub mod store_copy;
mod webhooks;

pub use crate::domain::{
    AccessToken, AccountFilter, Deleted, Event, OAuthApp, WebhookEvent, WebhookStatus,
};
pub use crate::store::DatabaseLocation;
pub use accounts::{Account, ListPage};
pub use connect::{CallbackOutcome, CallbackParams, FailureKind};
pub use lifecycle::{
    Decision, Policy, Trigger, deadline, decide, next_look, next_renewal, status_at,
};
pub use monitoring::NotReady;
pub use pending::{CONFIRM_WITHIN_SECONDS, PendingConnection};
pub use seal_contexts::{
    ACCESS as ACCESS_TOKEN_SEAL, REFRESH as REFRESH_TOKEN_SEAL, token_context,
};
pub use shared::SharedList;
pub use webhooks::signature as webhook_signature;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use url::Url;

use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::KeyRing;
use crate::domain::{AppId, AppName, ClientId, ClientSecret, Owner, Provider, Scopes, Timestamp};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::providers::{self, EndpointOverrides, Endpoints, ProviderHttp};
use crate::store::{AppRecord, Page, PgStore, SqliteStore, Store};
use key_file::KeySource;
use seal_contexts::secret_context;

/// Whether opening may create the database and key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenMode {
    CreateIfMissing,
    Existing,
}

/// Opens the configured database: PostgreSQL when `database.url` is set, else the SQLite
/// file at `database.path`.
async fn open_store(
    config: &Config,
    mode: OpenMode,
    pool_wait: prometheus_client::metrics::histogram::Histogram,
) -> Result<Arc<dyn Store>> {
    if let Some(url) = config.database.postgres_url() {
        return Ok(Arc::new(PgStore::connect(url, Some(pool_wait)).await?));
    }
    check_database_path(config, mode)?;
    let path = config.database.path.clone();
    Ok(Arc::new(
        tokio::task::spawn_blocking(move || SqliteStore::open_observed(&path, Some(pool_wait)))
            .await
            .map_err(|e| Error::Internal(format!("opening the database failed: {e}")))??,
    ))
}

/// Refuses, in one line that says where the path came from, a database path that cannot be
/// what the user meant: a directory, a file in a folder that does not exist (a typo, not a
/// reason to create folders), or, for commands that only use a database, no file at all.
fn check_database_path(config: &Config, mode: OpenMode) -> Result<()> {
    let path = &config.database.path;
    // The absolute path, then the path as given and where it came from.
    let shown = format!(
        "{} (database.path `{}`, from {})",
        std::path::absolute(path)
            .unwrap_or_else(|_| path.clone())
            .display(),
        path.display(),
        config.origin.database_path
    );
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(Error::config(format!(
            "the database {shown} is a directory: name a file, such as {}",
            path.join("dravo.db").display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                return Err(Error::config(format!(
                    "no database at {shown}: the directory {} does not exist",
                    dir.display()
                )));
            }
            match mode {
                OpenMode::CreateIfMissing => Ok(()),
                OpenMode::Existing => Err(Error::config(format!(
                    "no database at {shown}: `dravo init` or `dravo serve` creates one; to use another, pass --database PATH or set DRAVO_DATABASE_PATH{}",
                    match config.origin.file {
                        // Its settings may name the database: the server's file was not read.
                        None =>
                            ", or name the server's config file with --config PATH or DRAVO_CONFIG (no config file was read)",
                        Some(_) => "",
                    }
                ))),
            }
        }
        Err(e) => Err(Error::config(format!(
            "cannot use the database {shown}: {e}"
        ))),
    }
}

/// A handle to the running core; cheap to clone.
#[derive(Clone)]
pub struct Dravo(Arc<Inner>);

struct Inner {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    /// The master keys, sealing and dashboard tokens (see `keys`).
    vault: Arc<keys::Vault>,
    clock: Arc<dyn Clock>,
    public_url: String,
    /// Built on first use: its TLS set-up (root certificates) would cost every CLI call
    /// several milliseconds otherwise.
    http: std::sync::OnceLock<ProviderHttp>,
    /// Every registered provider's endpoints, overrides applied.
    endpoints: HashMap<Provider, Endpoints>,
    /// The platform app of each provider that has one in the config, checked once at start.
    default_apps: HashMap<Provider, DefaultApp>,
    allowed_return_urls: Vec<Url>,
    /// The callers' views of the store's shared lists (see `shared`).
    app_lists: shared::Derived<(String, Option<Provider>), [AppRecord], SharedList<OAuthApp>>,
    account_pages: shared::Derived<AccountPageKey, Page<Account>, SharedList<Account>>,
    /// Refreshes in flight in this process, one queue per account (see `lifecycle`).
    refresh_locks: lifecycle::RefreshLocks,
    /// Posts the outbox's events (see `webhooks`).
    webhooks: webhooks::WebhookSender,
    /// What this process counts for `GET /metrics`.
    metrics: Metrics,
    /// The database's figures for scrapes (`monitoring`).
    figures: monitoring::FigureCounter,
}

/// (owner, filter, position after, page size): one page of an owner's accounts.
type AccountPageKey = (String, AccountFilter, Option<i64>, usize);

/// A provider's default (platform) app from `[providers.<name>]`.
struct DefaultApp {
    client_id: ClientId,
    client_secret: ClientSecret,
    scopes: Scopes,
}

/// What a caller gives to create an OAuth app.
#[derive(Debug)]
pub struct NewApp {
    pub provider: Provider,
    pub name: AppName,
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    /// `None` uses the provider's default scopes.
    pub scopes: Option<Scopes>,
}

/// What a caller changes on an OAuth app (`PATCH`): each field given replaces the stored one.
#[derive(Debug, Default)]
pub struct AppChanges {
    pub name: Option<AppName>,
    /// Affects connects started from now on; connected accounts keep their grants.
    pub scopes: Option<Scopes>,
    /// Re-sealed; clears the provider's last refusal of the credentials.
    pub client_secret: Option<ClientSecret>,
}

impl AppChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.scopes.is_none() && self.client_secret.is_none()
    }
}

/// The sentence of `app_in_use`: how many accounts use the app, and what deletes it anyway.
pub fn app_in_use_message(id: &str, accounts: u64) -> String {
    let (noun, them) = if accounts == 1 {
        ("account uses", "it")
    } else {
        ("accounts use", "them")
    };
    format!(
        "{accounts} connected {noun} OAuth app {id}: delete {them} first, or delete the app with \
         `?cascade=true` (CLI: --cascade), which revokes and deletes {them} too"
    )
}

/// An app's credentials, opened for a call to its provider.
pub struct AppCredentials {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
}

impl Dravo {
    /// Opens the database and the keys named by `config`, on the system clock. `bound` is
    /// the address the server listens on, when serving, so the default public URL carries
    /// the real port.
    pub async fn open(config: Config, bound: Option<SocketAddr>) -> Result<Dravo> {
        Self::open_with_clock(config, bound, Arc::new(SystemClock)).await
    }

    /// Opens an existing database and its key, creating neither: what every command but
    /// `serve` and `init` uses, so a command run in the wrong directory (or with a mistyped
    /// path) says where it looked instead of starting an empty vault.
    pub async fn open_existing(config: Config) -> Result<Dravo> {
        Self::open_as(config, None, Arc::new(SystemClock), OpenMode::Existing).await
    }

    /// `open` with a given clock (tests move it).
    pub async fn open_with_clock(
        config: Config,
        bound: Option<SocketAddr>,
        clock: Arc<dyn Clock>,
    ) -> Result<Dravo> {
        Self::open_as(config, bound, clock, OpenMode::CreateIfMissing).await
    }

    async fn open_as(
        config: Config,
        bound: Option<SocketAddr>,
        clock: Arc<dyn Clock>,
        mode: OpenMode,
    ) -> Result<Dravo> {
        let metrics = Metrics::new();
        let store = open_store(&config, mode, metrics.pool_wait()).await?;
        let records = store.master_keys().await?;
        // Only a database that has never been sealed may get a fresh key file: creating one
        // for a used database would only hide that the real key is missing.
        let may_create_key = records.is_empty() && mode == OpenMode::CreateIfMissing;
        let file = key_file::load(&config, may_create_key)?;
        let records = if records.is_empty() {
            let first = keys::first_records(&file, clock.now());
            store
                .write(move |tx| {
                    // Another process may have recorded them first: theirs stand.
                    if tx.master_keys()?.is_empty() {
                        for record in &first {
                            tx.add_master_key(record)?;
                        }
                    }
                    tx.master_keys()
                })
                .await?
        } else {
            records
        };
        let source = KeySource::of(&config);
        let (ring, warnings) = KeyRing::build(
            &file,
            &keys::known_keys(&records),
            clock.now(),
            &source.describe(),
            &config.database.describe(),
        )?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        let auth = Authenticator::from_config(&config, &ring, clock.clone())?;
        let keys = keys::KeyHolder::new(ring, records, &source);
        let public_url = config.public_url(bound);
        let endpoints = providers::all()
            .map(|p| {
                let overrides = config
                    .providers
                    .get(p.id())
                    .map(|c| EndpointOverrides {
                        authorize_url: c.authorize_url.clone(),
                        token_url: c.token_url.clone(),
                        api_base: c.api_base.clone(),
                        api_version: c.api_version.clone(),
                    })
                    .unwrap_or_default();
                (p.id(), p.endpoints(&overrides))
            })
            .collect();
        let default_apps = default_apps(&config)?;
        let allowed_return_urls = config
            .dashboard
            .allowed_return_urls
            .iter()
            .map(|u| {
                Url::parse(u)
                    .map_err(|e| Error::config(format!("dashboard.allowed_return_urls: {e}")))
            })
            .collect::<Result<_>>()?;
        let webhooks =
            webhooks::WebhookSender::new(store.clone(), clock.clone(), config.webhooks.clone());
        let figures = monitoring::FigureCounter::new(store.clone(), clock.clone());
        let config = Arc::new(config);
        let vault = Arc::new(keys::Vault::new(
            store.clone(),
            clock.clone(),
            config.clone(),
            keys,
            auth,
        ));
        Ok(Dravo(Arc::new(Inner {
            config,
            store,
            vault,
            clock,
            public_url,
            http: std::sync::OnceLock::new(),
            endpoints,
            default_apps,
            allowed_return_urls,
            app_lists: Default::default(),
            account_pages: Default::default(),
            refresh_locks: Default::default(),
            webhooks,
            metrics,
            figures,
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn public_url(&self) -> &str {
        &self.0.public_url
    }

    /// What this process counts (requests are recorded by the HTTP face).
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Now, by the core's clock.
    fn now(&self) -> Timestamp {
        self.0.clock.now()
    }

    /// The callback URL for `provider`, which users register at the provider.
    pub fn redirect_uri(&self, provider: Provider) -> String {
        format!("{}/v1/oauth/{provider}/callback", self.0.public_url)
    }

    /// The client for calls to providers.
    fn http(&self) -> &ProviderHttp {
        self.0.http.get_or_init(|| {
            ProviderHttp::new(Duration::from_secs(self.0.config.providers.timeout_seconds))
        })
    }

    fn endpoints(&self, provider: Provider) -> &Endpoints {
        &self.0.endpoints[&provider]
    }

    /// Checks a dashboard bearer token; returns the tenant.
    pub fn authenticate(&self, token: &str) -> Result<Owner> {
        self.0.vault.auth().verify(token)
    }

    /// Issues a dashboard token (HS256 mode only).
    pub fn issue_token(&self, subject: &str, ttl_seconds: u64) -> Result<String> {
        self.0.vault.auth().issue(subject, ttl_seconds)
    }

    /// Answers once the database answers.
    pub async fn health(&self) -> Result<()> {
        self.0.store.ping().await
    }

    fn view(&self, row: &AppRecord) -> OAuthApp {
        OAuthApp {
            redirect_uri: self.redirect_uri(row.provider),
            id: row.id.to_string(),
            provider: row.provider,
            name: row.name.clone(),
            client_id: row.client_id.clone(),
            scopes: row.scopes.clone(),
            created_at: row.created_at,
            credentials_error: row.credentials_error.clone(),
            updated_at: row.updated_at,
            last_check: row.last_check.clone(),
        }
    }

    pub async fn create_app(&self, owner: &Owner, new: NewApp) -> Result<OAuthApp> {
        let id = AppId::generate();
        let mut record = AppRecord {
            id,
            owner: owner.clone(),
            provider: new.provider,
            name: new.name.as_str().to_owned(),
            client_id: new.client_id.as_str().to_owned(),
            client_secret_sealed: Vec::new(),
            scopes: new
                .scopes
                .unwrap_or_else(|| providers::get(new.provider).default_scope_list())
                .into_vec(),
            created_at: self.now(),
            credentials_error: None,
            credentials_error_at: None,
            updated_at: self.now(),
            last_check: None,
        };
        let (this, secret) = (self.clone(), new.client_secret);
        let record = self
            .0
            .store
            .write(move |tx| {
                // Sealed inside the transaction, with the key the database names now.
                record.client_secret_sealed = this.sealing_keys(tx)?.sealer().seal(
                    &secret_context(record.id.as_str(), record.owner.as_str(), record.provider),
                    secret.expose().as_bytes(),
                );
                tx.insert_app(&record).map(|_| record)
            })
            .await?;
        tracing::info!(app_id = %record.id, provider = %record.provider, "oauth app created");
        Ok(self.view(&record))
    }

    /// The owner's apps, oldest first.
    pub async fn list_apps(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Vec<OAuthApp>> {
        Ok(self.list_apps_shared(owner, provider).await?.items.clone())
    }

    /// The owner's apps, oldest first, as a shared list (the API's hot read).
    pub async fn list_apps_shared(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Arc<SharedList<OAuthApp>>> {
        let rows = self.0.store.list_apps(owner, provider).await?;
        Ok(self
            .0
            .app_lists
            .get_or_make((owner.as_str().to_owned(), provider), &rows, |rows| {
                SharedList {
                    items: rows.iter().map(|r| self.view(r)).collect(),
                    next_cursor: None,
                    rendered: Default::default(),
                }
            }))
    }

    /// One of the owner's apps as stored.
    async fn app_record(&self, owner: &Owner, id: &AppId) -> Result<Arc<AppRecord>> {
        self.0
            .store
            .get_app(owner, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no OAuth app with id {id}")))
    }

    pub async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<OAuthApp> {
        Ok(self.view(&*self.app_record(owner, id).await?))
    }

    /// Changes an app's name, scopes and/or secret. A new secret is sealed as `create_app`
    /// seals it, clears the provider's last refusal, and makes the app's accounts that wait on
    /// a cooldown after failed refreshes due now, all in one transaction.
    pub async fn update_app(
        &self,
        owner: &Owner,
        id: &AppId,
        changes: AppChanges,
    ) -> Result<OAuthApp> {
        if changes.is_empty() {
            return Err(Error::invalid(
                "nothing to change: give at least one of name, scopes and client_secret",
            ));
        }
        let now = self.now();
        let this = self.clone();
        let (o, i) = (owner.clone(), id.clone());
        let (record, due) = self
            .0
            .store
            .write(move |tx| {
                let mut row = tx
                    .get_app(&o, &i)?
                    .ok_or_else(|| Error::not_found(format!("no OAuth app with id {i}")))?;
                if let Some(name) = changes.name {
                    row.name = name.as_str().to_owned();
                }
                if let Some(scopes) = changes.scopes {
                    row.scopes = scopes.into_vec();
                    // The check described scopes the app no longer asks for.
                    row.last_check = None;
                }
                let mut due = 0;
                if let Some(secret) = changes.client_secret {
                    row.client_secret_sealed = this.sealing_keys(tx)?.sealer().seal(
                        &secret_context(row.id.as_str(), row.owner.as_str(), row.provider),
                        secret.expose().as_bytes(),
                    );
                    row.credentials_error = None;
                    row.credentials_error_at = None;
                    row.last_check = None;
                    due = tx.make_app_accounts_due(&row.id, now)?;
                }
                row.updated_at = now;
                if !tx.update_app(&row)? {
                    return Err(Error::not_found(format!("no OAuth app with id {i}")));
                }
                Ok((row, due))
            })
            .await?;
        tracing::info!(app_id = %record.id, accounts_due = due, "oauth app updated");
        Ok(self.view(&record))
    }

    /// Deletes one of the owner's apps. While connected accounts use it, that is `AppInUse`,
    /// unless `cascade`: then each account is first deleted as `delete_account` deletes it
    /// (revoked at the provider where it can be, `account.deleted` recorded). Returns what
    /// deleting the accounts did.
    pub async fn delete_app(
        &self,
        owner: &Owner,
        id: &AppId,
        cascade: bool,
    ) -> Result<Vec<Deleted>> {
        self.app_record(owner, id).await?;
        let mut deleted = Vec::new();
        if cascade {
            for account in self.0.store.app_account_ids(owner, id).await? {
                match self.delete_account(owner, &account).await {
                    Ok(d) => deleted.push(d),
                    // Deleted meanwhile by another caller: gone either way.
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let (o, i) = (owner.clone(), id.clone());
        // Counted again in the deleting transaction: an account connected meanwhile keeps the
        // app.
        let gone = self
            .0
            .store
            .write(move |tx| match tx.count_app_accounts(&o, &i)? {
                0 => tx.delete_app(&o, &i),
                n => Err(Error::AppInUse(app_in_use_message(i.as_str(), n))),
            })
            .await?;
        if !gone {
            return Err(Error::not_found(format!("no OAuth app with id {id}")));
        }
        tracing::info!(app_id = %id, accounts_deleted = deleted.len(), "oauth app deleted");
        Ok(deleted)
    }

    /// Opens an app's client secret, for a call to its provider.
    pub async fn app_credentials(&self, owner: &Owner, id: &AppId) -> Result<AppCredentials> {
        let row = self.app_record(owner, id).await?;
        Ok(AppCredentials {
            provider: row.provider,
            client_id: row.client_id.clone(),
            client_secret: self.open_client_secret(&row)?,
            scopes: row.scopes.clone(),
        })
    }

    fn open_client_secret(&self, row: &AppRecord) -> Result<ClientSecret> {
        let plain = self.open_sealed(
            &secret_context(row.id.as_str(), row.owner.as_str(), row.provider),
            &row.client_secret_sealed,
        )?;
        let secret = String::from_utf8(plain)
            .map_err(|_| Error::Unseal("a sealed client secret is not UTF-8".into()))?;
        ClientSecret::parse(&secret)
    }
}

/// Checks each `[providers.<name>]` platform app once, into domain values.
fn default_apps(config: &Config) -> Result<HashMap<Provider, DefaultApp>> {
    let mut apps = HashMap::new();
    for provider in providers::ids() {
        let Some(c) = config.providers.get(provider) else {
            continue;
        };
        let (Some(id), Some(secret)) = (&c.client_id, &c.client_secret) else {
            continue;
        };
        let key = |k: &str| format!("providers.{provider}.{k}");
        let client_id =
            ClientId::parse(id).map_err(|e| Error::config(format!("{}: {e}", key("client_id"))))?;
        let client_secret = ClientSecret::parse(secret.expose_secret())
            .map_err(|e| Error::config(format!("{}: {e}", key("client_secret"))))?;
        let scopes = match &c.scopes {
            Some(s) => {
                Scopes::parse(s).map_err(|e| Error::config(format!("{}: {e}", key("scopes"))))?
            }
            None => providers::get(provider).default_scope_list(),
        };
        apps.insert(
            provider,
            DefaultApp {
                client_id,
                client_secret,
                scopes,
            },
        );
    }
    Ok(apps)
}

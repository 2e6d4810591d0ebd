//! The core: every operation Dravo offers, called by both the HTTP handlers and the CLI.
//! Handlers and commands only translate their input into these calls and the results back.
//! `Dravo` is a thin front over parts that own their state and are handed their collaborators
//! (`Inner` names each): OAuth apps in `apps`, the app a flow runs with in `flow_apps`, calls
//! to providers in `provider_calls`, the keys in `keys`, events in `events`, the token
//! lifecycle in `lifecycle`, the connect flow in `connect` (with `pending`), webhooks in
//! `webhooks` and the database's figures in `monitoring`. Connected accounts are read and
//! deleted in `accounts`.

mod accounts;
mod app_checks;
mod apps;
pub mod backup;
mod children;
mod connect;
pub mod doctor;
mod events;
mod flow_apps;
pub mod healthcheck;
pub mod init;
mod instances;
pub mod key_file;
pub mod keys;
mod lifecycle;
mod monitoring;
mod pending;
mod provider_calls;
mod renewal;
mod seal_contexts;
pub mod store_copy;
mod webhooks;

pub use crate::domain::{
    AccessToken, AccountFilter, Deleted, Event, OAuthApp, WebhookEvent, WebhookStatus,
};
pub use crate::store::DatabaseLocation;
pub use crate::store::ReadVersion;
pub use accounts::{Account, ListPage};
pub use apps::{AppChanges, AppCredentials, NewApp, app_in_use_message};
pub use connect::{CallbackOutcome, CallbackParams, FailureKind};
pub use monitoring::NotReady;
pub use pending::{CONFIRM_WITHIN_SECONDS, PendingConnection};
pub use renewal::{
    Decision, Policy, Trigger, deadline, decide, next_look, next_renewal, status_at,
};
pub use seal_contexts::{
    ACCESS as ACCESS_TOKEN_SEAL, REFRESH as REFRESH_TOKEN_SEAL, token_context,
};
pub use webhooks::signature as webhook_signature;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::KeyRing;
use crate::domain::{Owner, Provider, Timestamp};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::Store;
use key_file::KeySource;

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
    let location = config.database.location();
    if location.local_file().is_some() {
        check_database_path(config, mode)?;
    }
    location.open(Some(pool_wait)).await
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

/// The front's fields: the shared collaborators it hands the parts (and itself uses for
/// what joins parts), then the parts, each the one owner of its state.
struct Inner {
    /// The configuration as loaded, handed to the parts that read settings.
    config: Arc<Config>,
    /// The database, handed to every part; the front reads and deletes accounts with it.
    store: Arc<dyn Store>,
    /// The master keys, sealing and dashboard tokens (see `keys`).
    vault: Arc<keys::Vault>,
    /// The one source of now, handed to every part.
    clock: Arc<dyn Clock>,
    /// Where callbacks arrive, handed to the apps and the connect flow.
    public_url: String,
    /// The HTTP client and endpoints for calls to providers (see `provider_calls`).
    calls: Arc<provider_calls::ProviderCalls>,
    /// The app each flow runs with, and the config's default apps (see `flow_apps`).
    flow_apps: Arc<flow_apps::FlowApps>,
    /// A tenant's OAuth apps (see `apps`).
    apps: Arc<apps::Apps>,
    /// Records account events and their webhooks (see `events`).
    outbox: Arc<events::Outbox>,
    /// Access tokens, refreshes (their locks and leases) and the refresher (see `lifecycle`).
    tokens: Arc<lifecycle::Tokens>,
    /// The connect flow, its return URLs and pending connections (see `connect`).
    connect: connect::Connect,
    /// Posts the outbox's events (see `webhooks`).
    webhooks: webhooks::WebhookSender,
    /// What this process counts for `GET /metrics`.
    metrics: Metrics,
    /// The database's figures for scrapes (`monitoring`).
    figures: monitoring::FigureCounter,
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
                    Box::pin(async move {
                        // Another process may have recorded them first: theirs stand.
                        if tx.master_keys().await?.is_empty() {
                            for record in &first {
                                tx.add_master_key(record).await?;
                            }
                        }
                        tx.master_keys().await
                    })
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
        let calls = Arc::new(provider_calls::ProviderCalls::of(&config));
        // Checked here, before the return URLs, as ever; the apps they join come later.
        let default_apps = flow_apps::default_apps(&config)?;
        let allowed_return_urls = connect::allowed_return_urls(&config)?;
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
        let apps = Arc::new(apps::Apps::new(
            store.clone(),
            vault.clone(),
            clock.clone(),
            public_url.clone(),
        ));
        let flow_apps = Arc::new(flow_apps::FlowApps::new(default_apps, apps.clone()));
        let instances = Arc::new(instances::Instances::new(
            store.clone(),
            vault.clone(),
            clock.clone(),
            calls.clone(),
            public_url.clone(),
        ));
        let outbox = Arc::new(events::Outbox::new(apps.clone()));
        let tokens = Arc::new(lifecycle::Tokens::new(
            config.clone(),
            store.clone(),
            vault.clone(),
            clock.clone(),
            calls.clone(),
            flow_apps.clone(),
            instances.clone(),
            outbox.clone(),
            metrics.clone(),
        ));
        let connect = connect::Connect::new(
            config.clone(),
            store.clone(),
            vault.clone(),
            clock.clone(),
            public_url.clone(),
            calls.clone(),
            flow_apps.clone(),
            instances,
            outbox.clone(),
            tokens.clone(),
            metrics.clone(),
            allowed_return_urls,
        );
        Ok(Dravo(Arc::new(Inner {
            config,
            store,
            vault,
            clock,
            public_url,
            calls,
            flow_apps,
            apps,
            outbox,
            tokens,
            connect,
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
        apps::redirect_uri(&self.0.public_url, provider)
    }

    /// What the database looks like to this thread's reads now, when the store can tell (see
    /// `store::ReadVersion`): equal versions mean nothing was committed in between.
    pub async fn read_version(&self) -> Result<Option<ReadVersion>> {
        self.0.store.read_version().await
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
}

//! The core: every operation Dravo offers, called by both the HTTP handlers and the CLI.
//! Handlers and commands only translate their input into these calls and the results back.
//! OAuth apps live here; the connect flow in `connect`, connected accounts in `accounts`.

mod accounts;
mod cache;
mod connect;

pub use accounts::Account;
pub use connect::{CallbackOutcome, CallbackParams, FailureKind};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::crypto::{Keys, MasterKey};
use crate::domain::{AppId, AppName, ClientId, ClientSecret, Owner, Scopes, now_rfc3339};
use crate::error::{Error, Result};
use crate::providers::{Endpoints, Provider, ProviderHttp};
use crate::store::{self, Store, oauth_apps};

const KEY_CHECK: &str = "master_key_check";

/// A handle to the running core; cheap to clone.
#[derive(Clone)]
pub struct Dravo(Arc<Inner>);

struct Inner {
    config: Config,
    store: Store,
    keys: Keys,
    auth: Authenticator,
    public_url: String,
    /// Built on first use: its TLS set-up (root certificates) would cost every CLI call
    /// several milliseconds otherwise.
    http: std::sync::OnceLock<ProviderHttp>,
    /// Indexed like `Provider::ALL`.
    endpoints: Vec<Endpoints>,
    allowed_return_urls: Vec<Url>,
    apps: cache::AppCache,
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

/// An OAuth app as callers see it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthApp {
    pub id: String,
    pub provider: Provider,
    pub name: String,
    pub client_id: String,
    /// The callback URL to register at the provider.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

/// An owner's apps as one shareable list. `rendered` is a memo for whoever turns the list
/// into a response body: the list is immutable, so the body only needs building once for as
/// long as the list stays cached.
#[derive(Debug)]
pub struct AppList {
    pub apps: Vec<OAuthApp>,
    pub rendered: std::sync::OnceLock<bytes::Bytes>,
}

impl AppList {
    pub fn new(apps: Vec<OAuthApp>) -> Self {
        AppList {
            apps,
            rendered: std::sync::OnceLock::new(),
        }
    }
}

/// An app's credentials, opened for a call to its provider.
pub struct AppCredentials {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
}

fn secret_context<'a>(id: &'a str, owner: &'a str, provider: Provider) -> [&'a [u8]; 4] {
    [
        b"oauth_app.client_secret",
        id.as_bytes(),
        owner.as_bytes(),
        provider.as_str().as_bytes(),
    ]
}

impl Dravo {
    /// Opens the database and the keys named by `config`. `bound` is the address the server
    /// listens on, when serving, so the default public URL carries the real port.
    pub fn open(config: Config, bound: Option<SocketAddr>) -> Result<Dravo> {
        let store = Store::open(&config.database.path)?;
        let recorded = store.call_sync(|c| store::meta_get(c, KEY_CHECK))?;
        // Only a database that has never been sealed may get a fresh key file: creating one
        // for a used database would only hide that the real key is missing.
        let master = MasterKey::load(&config, recorded.is_none())?;
        let keys = Keys::derive(&master);
        let stored = match recorded {
            Some(value) => value,
            None => store.call_sync(|c| store::meta_init(c, KEY_CHECK, keys.check_value()))?,
        };
        if stored != keys.check_value() {
            return Err(Error::Key(format!(
                "the master key does not match the database {}: it was created with another key (check security.master_key and security.master_key_file)",
                config.database.path.display()
            )));
        }
        let auth = Authenticator::from_config(&config, &keys)?;
        let public_url = config.public_url(bound);
        let endpoints = Provider::ALL
            .iter()
            .map(|p| p.endpoints(config.providers.get(*p)))
            .collect();
        let allowed_return_urls = config
            .dashboard
            .allowed_return_urls
            .iter()
            .map(|u| {
                Url::parse(u)
                    .map_err(|e| Error::config(format!("dashboard.allowed_return_urls: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Dravo(Arc::new(Inner {
            config,
            store,
            keys,
            auth,
            public_url,
            http: std::sync::OnceLock::new(),
            endpoints,
            allowed_return_urls,
            apps: cache::AppCache::default(),
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn public_url(&self) -> &str {
        &self.0.public_url
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
        let index = Provider::ALL
            .iter()
            .position(|p| *p == provider)
            .expect("every provider is in ALL");
        &self.0.endpoints[index]
    }

    /// Checks a dashboard bearer token; returns the tenant.
    pub fn authenticate(&self, token: &str) -> Result<Owner> {
        self.0.auth.verify(token)
    }

    /// Issues a dashboard token (HS256 mode only).
    pub fn issue_token(&self, subject: &str, ttl_seconds: u64) -> Result<String> {
        self.0.auth.issue(subject, ttl_seconds)
    }

    /// Answers once the database answers.
    pub async fn health(&self) -> Result<()> {
        self.0
            .store
            .call(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }

    fn view(&self, row: &oauth_apps::AppRow) -> OAuthApp {
        OAuthApp {
            redirect_uri: self.redirect_uri(row.provider),
            id: row.id.clone(),
            provider: row.provider,
            name: row.name.clone(),
            client_id: row.client_id.clone(),
            scopes: row.scopes.clone(),
            created_at: row.created_at.clone(),
        }
    }

    pub async fn create_app(&self, owner: &Owner, new: NewApp) -> Result<OAuthApp> {
        let id = AppId::generate();
        let sealed = self.0.keys.sealer().seal(
            &secret_context(id.as_str(), owner.as_str(), new.provider),
            new.client_secret.expose().as_bytes(),
        );
        let row = oauth_apps::AppRow {
            id: id.to_string(),
            owner: owner.as_str().to_owned(),
            provider: new.provider,
            name: new.name.as_str().to_owned(),
            client_id: new.client_id.as_str().to_owned(),
            client_secret_sealed: sealed,
            scopes: new
                .scopes
                .unwrap_or_else(|| Scopes::defaults(new.provider))
                .into_vec(),
            created_at: now_rfc3339(),
        };
        let row = self
            .0
            .store
            .call(move |c| oauth_apps::insert(c, &row).map(|_| row))
            .await?;
        tracing::info!(app_id = %row.id, provider = %row.provider, "oauth app created");
        Ok(self.view(&row))
    }

    pub async fn list_apps(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Vec<OAuthApp>> {
        Ok(self.list_apps_shared(owner, provider).await?.apps.clone())
    }

    /// The owner's apps, oldest first, shared with the cache (the hot read of the API).
    pub async fn list_apps_shared(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Arc<AppList>> {
        let version = self.0.store.data_version()?;
        if let Some(list) = self.0.apps.list(version, owner.as_str(), provider) {
            return Ok(list);
        }
        let o = owner.clone();
        let rows = self
            .0
            .store
            .call(move |c| oauth_apps::list(c, &o, provider))
            .await?;
        let list = Arc::new(AppList::new(rows.iter().map(|r| self.view(r)).collect()));
        self.0
            .apps
            .put_list(version, owner.as_str(), provider, list.clone());
        Ok(list)
    }

    /// One of the owner's apps, from the cache when the database has not changed since.
    async fn app_row(&self, owner: &Owner, id: &AppId) -> Result<Arc<oauth_apps::AppRow>> {
        let version = self.0.store.data_version()?;
        if let Some(row) = self.0.apps.row(version, owner.as_str(), id.as_str()) {
            return Ok(row);
        }
        let (o, i) = (owner.clone(), id.clone());
        let row = Arc::new(
            self.0
                .store
                .call(move |c| {
                    oauth_apps::get(c, &o, &i)?
                        .ok_or_else(|| Error::not_found(format!("no OAuth app with id {i}")))
                })
                .await?,
        );
        self.0.apps.put_row(version, row.clone());
        Ok(row)
    }

    pub async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<OAuthApp> {
        let row = self.app_row(owner, id).await?;
        Ok(self.view(&row))
    }

    pub async fn delete_app(&self, owner: &Owner, id: &AppId) -> Result<()> {
        let (owner, id) = (owner.clone(), id.clone());
        self.0
            .store
            .call(move |c| {
                if oauth_apps::delete(c, &owner, &id)? {
                    tracing::info!(app_id = %id, "oauth app deleted");
                    Ok(())
                } else {
                    Err(Error::not_found(format!("no OAuth app with id {id}")))
                }
            })
            .await
    }

    /// Opens an app's client secret, for a call to its provider.
    pub async fn app_credentials(&self, owner: &Owner, id: &AppId) -> Result<AppCredentials> {
        let row = self.app_row(owner, id).await?;
        Ok(AppCredentials {
            provider: row.provider,
            client_id: row.client_id.clone(),
            client_secret: self.open_client_secret(&row)?,
            scopes: row.scopes.clone(),
        })
    }

    pub(super) fn open_client_secret(&self, row: &oauth_apps::AppRow) -> Result<ClientSecret> {
        let plain = self.0.keys.sealer().open(
            &secret_context(&row.id, &row.owner, row.provider),
            &row.client_secret_sealed,
        )?;
        let secret = String::from_utf8(plain)
            .map_err(|_| Error::Unseal("a sealed client secret is not UTF-8".into()))?;
        ClientSecret::parse(&secret)
    }
}

//! OAuth apps (BYOK): creating, listing, changing and deleting a tenant's apps, and opening
//! an app's client secret for a call to its provider. The `Apps` part owns the callers' views
//! of the app lists; it is handed the store, the vault (which seals the secrets) and the
//! clock. Deleting an app together with its accounts is `Dravo::delete_app`'s, since the
//! accounts are another part's.

use std::sync::Arc;

use super::Dravo;
use super::keys::Vault;
use super::seal_contexts::secret_context;
use crate::clock::Clock;
use crate::domain::{
    AppId, AppName, ClientId, ClientSecret, Deleted, OAuthApp, Owner, Provider, RegisteredServer,
    Scopes, UserAgent,
};
use crate::error::{Error, Result};
use crate::providers;
use crate::store::{AppRecord, Store};

/// What a caller gives to create an OAuth app.
#[derive(Debug)]
pub struct NewApp {
    pub provider: Provider,
    pub name: AppName,
    /// The app's credentials at its provider: required where the tenant registers the app
    /// (`Hosting::Central`), refused where Dravo registers it on each server (Mastodon).
    pub client_id: Option<ClientId>,
    pub client_secret: Option<ClientSecret>,
    /// The website shown on the servers Dravo registers the app on (Mastodon only).
    pub website: Option<String>,
    /// `None` uses the provider's default scopes.
    pub scopes: Option<Scopes>,
    /// `None` uses the provider's default `User-Agent`.
    pub user_agent: Option<UserAgent>,
}

/// What a caller changes on an OAuth app (`PATCH`): each field given replaces the stored one.
#[derive(Debug, Default)]
pub struct AppChanges {
    pub name: Option<AppName>,
    /// Affects connects started from now on; connected accounts keep their grants.
    pub scopes: Option<Scopes>,
    /// Re-sealed; clears the provider's last refusal of the credentials.
    pub client_secret: Option<ClientSecret>,
    /// `Some(None)` goes back to the provider's default `User-Agent`.
    pub user_agent: Option<Option<UserAgent>>,
}

impl AppChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.scopes.is_none()
            && self.client_secret.is_none()
            && self.user_agent.is_none()
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
    /// The app's own `User-Agent`, if it has one.
    pub user_agent: Option<String>,
}

/// Why an app of a provider whose users name their server holds no credentials.
const NO_CREDENTIALS_WHY: &str = "Dravo registers the app on each server a user connects from \
     (POST /api/v1/apps on a Mastodon instance) and keeps that server's client id and secret \
     sealed";

/// The app's client id and secret as the provider's hosting wants them: both for a provider
/// the tenant registers the app at, neither (and a website at most) where Dravo registers it.
fn check_credentials_given(new: &NewApp) -> Result<(String, Option<ClientSecret>)> {
    let provider = new.provider;
    check_website(new.website.as_deref())?;
    if providers::get(provider).hosting().app_has_credentials() {
        return match (&new.client_id, &new.client_secret) {
            (Some(id), Some(secret)) => Ok((id.as_str().to_owned(), Some(secret.clone()))),
            (None, _) => Err(Error::invalid(format!(
                "client_id is required: the client id of your {provider} app"
            ))),
            (_, None) => Err(Error::invalid(format!(
                "client_secret is required: the client secret of your {provider} app"
            ))),
        };
    }
    if let Some(field) = [
        ("client_id", new.client_id.is_some()),
        ("client_secret", new.client_secret.is_some()),
    ]
    .iter()
    .find_map(|(name, given)| given.then_some(name))
    {
        return Err(Error::invalid(format!(
            "{field} is not taken for {provider}: {NO_CREDENTIALS_WHY}; give name, scopes and website only"
        )));
    }
    Ok((String::new(), None))
}

/// An app's website, when given: an absolute http(s) URL. Any app may have one; the servers
/// Dravo registers apps on (Mastodon instances) show it with the app's name.
fn check_website(website: Option<&str>) -> Result<()> {
    if let Some(website) = website {
        let ok = url::Url::parse(website)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !ok || website.len() > 2048 {
            return Err(Error::invalid(
                "website must be an absolute http(s) URL of at most 2048 bytes",
            ));
        }
    }
    Ok(())
}

/// The callback URL for `provider` under `public_url`, which users register at the provider.
pub(super) fn redirect_uri(public_url: &str, provider: Provider) -> String {
    format!("{public_url}/v1/oauth/{provider}/callback")
}

/// A tenant's OAuth apps.
pub(super) struct Apps {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    /// Where callbacks arrive (each app's view names its redirect URI).
    public_url: String,
}

impl Apps {
    pub(super) fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        public_url: String,
    ) -> Self {
        Apps {
            store,
            vault,
            clock,
            public_url,
        }
    }

    /// The app as callers see it, with the servers it is registered on (for a provider whose
    /// users name their server).
    pub(super) async fn view(&self, row: &AppRecord) -> Result<OAuthApp> {
        let servers = if providers::get(row.provider).hosting().app_has_credentials() {
            Vec::new()
        } else {
            self.store
                .registrations(&row.owner, &row.id)
                .await?
                .into_iter()
                .map(|r| RegisteredServer {
                    server: r.server,
                    client_id: r.client_id,
                    scopes: r.scopes,
                    pkce: r.pkce,
                    registered_at: r.created_at,
                })
                .collect()
        };
        Ok(self.view_with(row, servers))
    }

    /// The app as callers see it, with the given servers.
    pub(super) fn view_with(&self, row: &AppRecord, servers: Vec<RegisteredServer>) -> OAuthApp {
        OAuthApp {
            redirect_uri: redirect_uri(&self.public_url, row.provider),
            id: row.id.to_string(),
            provider: row.provider,
            name: row.name.clone(),
            client_id: Some(row.client_id.clone()).filter(|id| !id.is_empty()),
            scopes: row.scopes.clone(),
            created_at: row.created_at,
            credentials_error: row.credentials_error.clone(),
            updated_at: row.updated_at,
            last_check: row.last_check.clone(),
            warnings: super::app_checks::scope_problems(providers::get(row.provider), &row.scopes),
            user_agent: row.user_agent.clone(),
            website: row.website.clone(),
            servers,
        }
    }

    pub(super) async fn create(&self, owner: &Owner, new: NewApp) -> Result<OAuthApp> {
        let (client_id, secret) = check_credentials_given(&new)?;
        let id = AppId::generate();
        let mut record = AppRecord {
            id,
            owner: owner.clone(),
            provider: new.provider,
            name: new.name.as_str().to_owned(),
            client_id,
            client_secret_sealed: Vec::new(),
            scopes: new
                .scopes
                .unwrap_or_else(|| providers::get(new.provider).default_scope_list())
                .into_vec(),
            created_at: self.clock.now(),
            credentials_error: None,
            credentials_error_at: None,
            updated_at: self.clock.now(),
            last_check: None,
            user_agent: new.user_agent.map(|ua| ua.as_str().to_owned()),
            website: new.website,
        };
        let vault = self.vault.clone();
        let record = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    // Sealed inside the transaction, with the key the database names now. An
                    // app without a secret (Mastodon's) seals nothing.
                    if let Some(secret) = secret {
                        record.client_secret_sealed = vault.sealing_keys(tx).await?.sealer().seal(
                            &secret_context(
                                record.id.as_str(),
                                record.owner.as_str(),
                                record.provider,
                            ),
                            secret.expose().as_bytes(),
                        );
                    }
                    tx.insert_app(&record).await.map(|_| record)
                })
            })
            .await?;
        tracing::info!(app_id = %record.id, provider = %record.provider, "oauth app created");
        Ok(self.view_with(&record, Vec::new()))
    }

    /// The owner's apps, oldest first.
    pub(super) async fn list(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Vec<OAuthApp>> {
        let rows = self.store.list_apps(owner, provider).await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in &rows {
            views.push(self.view(row).await?);
        }
        Ok(views)
    }

    /// One of the owner's apps as stored.
    pub(super) async fn record(&self, owner: &Owner, id: &AppId) -> Result<AppRecord> {
        self.store
            .get_app(owner, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no OAuth app with id {id}")))
    }

    pub(super) async fn get(&self, owner: &Owner, id: &AppId) -> Result<OAuthApp> {
        self.view(&self.record(owner, id).await?).await
    }

    /// Changes an app's name, scopes, secret and/or user agent. A new secret is sealed as `create_app`
    /// seals it, clears the provider's last refusal, and makes the app's accounts that wait on
    /// a cooldown after failed refreshes due now, all in one transaction.
    pub(super) async fn update(
        &self,
        owner: &Owner,
        id: &AppId,
        changes: AppChanges,
    ) -> Result<OAuthApp> {
        if changes.is_empty() {
            return Err(Error::invalid(
                "nothing to change: give at least one of name, scopes, client_secret and user_agent",
            ));
        }
        let now = self.clock.now();
        let vault = self.vault.clone();
        let (o, i) = (owner.clone(), id.clone());
        let (record, due) = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let mut row = tx
                        .get_app(&o, &i)
                        .await?
                        .ok_or_else(|| Error::not_found(format!("no OAuth app with id {i}")))?;
                    if let Some(name) = changes.name {
                        row.name = name.as_str().to_owned();
                    }
                    if let Some(scopes) = changes.scopes {
                        row.scopes = scopes.into_vec();
                        // The check described scopes the app no longer asks for.
                        row.last_check = None;
                    }
                    if let Some(user_agent) = changes.user_agent {
                        row.user_agent = user_agent.map(|ua| ua.as_str().to_owned());
                    }
                    let mut due = 0;
                    if let Some(secret) = changes.client_secret {
                        if row.client_secret_sealed.is_empty() {
                            return Err(Error::invalid(format!(
                                "a {} app has no client_secret: {}",
                                row.provider, NO_CREDENTIALS_WHY
                            )));
                        }
                        row.client_secret_sealed = vault.sealing_keys(tx).await?.sealer().seal(
                            &secret_context(row.id.as_str(), row.owner.as_str(), row.provider),
                            secret.expose().as_bytes(),
                        );
                        row.credentials_error = None;
                        row.credentials_error_at = None;
                        row.last_check = None;
                        due = tx.make_app_accounts_due(&row.id, now).await?;
                    }
                    row.updated_at = now;
                    if !tx.update_app(&row).await? {
                        return Err(Error::not_found(format!("no OAuth app with id {i}")));
                    }
                    Ok((row, due))
                })
            })
            .await?;
        tracing::info!(app_id = %record.id, accounts_due = due, "oauth app updated");
        self.view(&record).await
    }

    /// Deletes one of the owner's apps when no connected account uses it (counted in the
    /// deleting transaction: an account connected meanwhile keeps the app); `AppInUse`
    /// otherwise.
    pub(super) async fn delete_unused(&self, owner: &Owner, id: &AppId) -> Result<()> {
        let (o, i) = (owner.clone(), id.clone());
        let gone = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    match tx.count_app_accounts(&o, &i).await? {
                        0 => tx.delete_app(&o, &i).await,
                        n => Err(Error::AppInUse(app_in_use_message(i.as_str(), n))),
                    }
                })
            })
            .await?;
        if !gone {
            return Err(Error::not_found(format!("no OAuth app with id {id}")));
        }
        Ok(())
    }

    /// Opens an app's client secret, for a call to its provider.
    pub(super) async fn credentials(&self, owner: &Owner, id: &AppId) -> Result<AppCredentials> {
        let row = self.record(owner, id).await?;
        Ok(AppCredentials {
            provider: row.provider,
            client_id: row.client_id.clone(),
            client_secret: self.open_client_secret(&row).await?,
            scopes: row.scopes.clone(),
            user_agent: row.user_agent.clone(),
        })
    }

    pub(super) async fn open_client_secret(&self, row: &AppRecord) -> Result<ClientSecret> {
        if row.client_secret_sealed.is_empty() {
            return Err(Error::invalid(format!(
                "OAuth app {} has no client secret: {NO_CREDENTIALS_WHY}",
                row.id
            )));
        }
        let plain = self
            .vault
            .open_sealed(
                &secret_context(row.id.as_str(), row.owner.as_str(), row.provider),
                &row.client_secret_sealed,
            )
            .await?;
        let secret = String::from_utf8(plain)
            .map_err(|_| Error::Unseal("a sealed client secret is not UTF-8".into()))?;
        ClientSecret::parse(&secret)
    }
}

/// The apps' operations, as callers reach them.
impl Dravo {
    pub async fn create_app(&self, owner: &Owner, new: NewApp) -> Result<OAuthApp> {
        self.0.apps.create(owner, new).await
    }

    /// The owner's apps, oldest first.
    pub async fn list_apps(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Vec<OAuthApp>> {
        self.0.apps.list(owner, provider).await
    }

    pub async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<OAuthApp> {
        self.0.apps.get(owner, id).await
    }

    /// Changes an app's name, scopes and/or secret (`Apps::update`).
    pub async fn update_app(
        &self,
        owner: &Owner,
        id: &AppId,
        changes: AppChanges,
    ) -> Result<OAuthApp> {
        self.0.apps.update(owner, id, changes).await
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
        self.0.apps.record(owner, id).await?;
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
        self.0.apps.delete_unused(owner, id).await?;
        tracing::info!(app_id = %id, accounts_deleted = deleted.len(), "oauth app deleted");
        Ok(deleted)
    }

    /// Opens an app's client secret, for a call to its provider.
    pub async fn app_credentials(&self, owner: &Owner, id: &AppId) -> Result<AppCredentials> {
        self.0.apps.credentials(owner, id).await
    }
}

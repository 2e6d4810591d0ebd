//! Apps on the servers users name (Mastodon instances). There is no central place to register
//! an app, so the first connect of an app on a server registers it there, and the server's
//! client id and secret are kept sealed, one registration per (app, server). A registration
//! made with other scopes or another redirect URI than the app's current ones is made again.
//! The `Instances` part owns the registrations; it is handed the store, the vault (sealing the
//! secrets), the clock, the provider calls (the guarded client) and where callbacks arrive.

use std::sync::Arc;

use secrecy::ExposeSecret;
use url::Url;

use super::keys::Vault;
use super::seal_contexts::registration_context;
use crate::clock::Clock;
use crate::crypto::state::MAX_SERVER_LEN;
use crate::domain::{AppId, ClientSecret, Owner, Provider};
use crate::error::{Error, Result};
use crate::providers::mastodon::{self, AppToRegister, InstanceEndpoints};
use crate::providers::{Endpoints, ProviderError, guard};
use crate::store::{RegistrationRecord, Store};

use super::provider_calls::ProviderCalls;

/// How a flow speaks to one server for one app: the server's endpoints and the client it
/// registered.
pub(super) struct InstanceClient {
    /// The server's origin, as stored on accounts and in states.
    pub server: String,
    pub endpoints: Endpoints,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// The scopes the app was registered with, which a connect requests.
    pub scopes: Vec<String>,
    /// The server takes PKCE S256.
    pub pkce: bool,
}

/// What registering needs of the app.
pub(super) struct AppOnServer<'a> {
    pub owner: &'a Owner,
    pub provider: Provider,
    pub app_id: &'a AppId,
    pub name: &'a str,
    pub website: Option<&'a str>,
    pub scopes: &'a [String],
    pub user_agent: Option<&'a str>,
}

pub(super) struct Instances {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    calls: Arc<ProviderCalls>,
    public_url: String,
}

/// A refusal of the server a user named: 400, naming it.
fn refused(provider: Provider, param: &str, why: &str) -> Error {
    Error::invalid(format!("{param} is refused: {why} ({provider})"))
}

impl Instances {
    pub(super) fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        calls: Arc<ProviderCalls>,
        public_url: String,
    ) -> Self {
        Instances {
            store,
            vault,
            clock,
            calls,
            public_url,
        }
    }

    /// The server `input` names (a host, `host:port` or URL), as the origin Dravo calls:
    /// public and https unless the provider's config allows private addresses.
    pub(super) fn server_of(&self, provider: Provider, param: &str, input: &str) -> Result<Url> {
        let origin = guard::target_url(input, self.calls.allows_private(provider))
            .map_err(|why| refused(provider, param, &why))?;
        if origin.as_str().len() > MAX_SERVER_LEN {
            return Err(refused(
                provider,
                param,
                &format!("the address is longer than {MAX_SERVER_LEN} bytes"),
            ));
        }
        Ok(origin)
    }

    /// The app's client on the server `input` names, registering the app there first when it
    /// has no registration that matches its scopes and the redirect URI. Registering uses
    /// the scopes the server suggests when the app keeps the provider's defaults.
    pub(super) async fn client_for(
        &self,
        app: &AppOnServer<'_>,
        param: &str,
        input: &str,
    ) -> Result<InstanceClient> {
        let origin = self.server_of(app.provider, param, input)?;
        let server = server_key(&origin);
        let redirect_uri = super::apps::redirect_uri(&self.public_url, app.provider);
        let http = self.calls.http_for(app.provider, app.user_agent);
        let stored = self.store.registration(app.app_id, &server).await?;
        let defaults = crate::providers::get(app.provider).default_scope_list();
        let keeps_defaults = app.scopes == defaults.as_slice();
        if let Some(row) = &stored
            && row.redirect_uri == redirect_uri
            && (row.scopes == app.scopes || keeps_defaults)
        {
            return self.opened(row).await;
        }
        let endpoints = mastodon::discover(&http, &origin)
            .await
            .map_err(|e| server_error(app.provider, param, &server, e))?;
        let scopes = if keeps_defaults {
            endpoints.default_scopes()
        } else {
            app.scopes.to_vec()
        };
        let registration = mastodon::register(
            &http,
            &endpoints,
            &AppToRegister {
                client_name: app.name,
                website: app.website,
                redirect_uri: &redirect_uri,
                scopes: &scopes,
            },
        )
        .await
        .map_err(|e| server_error(app.provider, param, &server, e))?;
        let row = self
            .save(
                app,
                &server,
                &endpoints,
                &redirect_uri,
                scopes,
                registration,
            )
            .await?;
        tracing::info!(provider = %app.provider, app_id = %app.app_id, server = %server, "app registered on a server");
        self.opened(&row).await
    }

    /// Seals and stores a fresh registration (replacing the app's earlier one there).
    async fn save(
        &self,
        app: &AppOnServer<'_>,
        server: &str,
        endpoints: &InstanceEndpoints,
        redirect_uri: &str,
        scopes: Vec<String>,
        registration: mastodon::Registration,
    ) -> Result<RegistrationRecord> {
        let mut row = RegistrationRecord {
            id: new_registration_id(),
            owner: app.owner.clone(),
            provider: app.provider,
            app_id: app.app_id.clone(),
            server: server.to_owned(),
            client_id: registration.client_id,
            client_secret_sealed: Vec::new(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            authorize_url: endpoints.authorize_url.to_string(),
            token_url: endpoints.token_url.to_string(),
            revoke_url: endpoints.revoke_url.to_string(),
            pkce: endpoints.pkce,
            created_at: self.clock.now(),
        };
        let vault = self.vault.clone();
        let secret = registration.client_secret;
        let written = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let keys = vault.sealing_keys(tx).await?;
                    row.client_secret_sealed = keys.sealer().seal(
                        &registration_context(
                            &row.id,
                            row.owner.as_str(),
                            row.provider,
                            &row.server,
                        ),
                        secret.expose_secret().as_bytes(),
                    );
                    tx.put_registration(&row).await?;
                    Ok(row)
                })
            })
            .await?;
        Ok(written)
    }

    /// The client of the app's registration on `server` (an origin a state or an account
    /// carries). A registration that is gone (the app was deleted) is `NotFound`.
    pub(super) async fn registered(&self, app_id: &AppId, server: &str) -> Result<InstanceClient> {
        let row = self
            .store
            .registration(app_id, server)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "OAuth app {app_id} is not registered on {server} any more"
                ))
            })?;
        self.opened(&row).await
    }

    async fn opened(&self, row: &RegistrationRecord) -> Result<InstanceClient> {
        let plain = self
            .vault
            .open_sealed(
                &registration_context(&row.id, row.owner.as_str(), row.provider, &row.server),
                &row.client_secret_sealed,
            )
            .await?;
        let secret = String::from_utf8(plain)
            .map_err(|_| Error::Unseal("a sealed registration secret is not UTF-8".into()))?;
        let url = |text: &str| {
            Url::parse(text).map_err(|e| Error::store(format!("a stored registration URL: {e}")))
        };
        Ok(InstanceClient {
            server: row.server.clone(),
            endpoints: Endpoints {
                authorize_url: url(&row.authorize_url)?,
                token_url: url(&row.token_url)?,
                api_base: url(&row.server)?,
                api_version: String::new(),
                revoke_url: Some(url(&row.revoke_url)?),
            },
            client_id: row.client_id.clone(),
            client_secret: ClientSecret::parse(&secret)?,
            scopes: row.scopes.clone(),
            pkce: row.pkce,
        })
    }
}

/// A server as stored: its origin without the trailing slash (`https://host[:port]`).
fn server_key(origin: &Url) -> String {
    origin.as_str().trim_end_matches('/').to_owned()
}

/// A new registration id: `reg_` and 20 random base32 characters.
fn new_registration_id() -> String {
    crate::domain::new_id("reg_")
}

/// What failed on the user's server. The guard's refusals (a name that resolved to a private
/// address, a redirect to one) are the user's input: 400. The rest is the server's: 502.
fn server_error(provider: Provider, param: &str, server: &str, e: ProviderError) -> Error {
    match e {
        ProviderError::Refused(why) => refused(provider, param, &why),
        other => Error::Provider(ProviderError::Unavailable(format!(
            "registering the app on {server} failed: {}",
            other.description()
        ))),
    }
}

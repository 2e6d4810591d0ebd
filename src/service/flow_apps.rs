//! Which app a call to a provider runs with: a tenant's BYOK app (from `apps`) or the
//! provider's default (platform) app from `[providers.<name>]`. The `FlowApps` part owns the
//! default apps, checked once at start; it is handed the tenant's apps. The connect flow,
//! refreshes and revocations ask it, and `dravo doctor` checks the default apps it holds.

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::apps::Apps;
use crate::config::Config;
use crate::domain::{AppId, ClientId, ClientSecret, Owner, Provider, Scopes};
use crate::error::{Error, Result};
use crate::providers;
use crate::store::AppRecord;

/// The app a flow runs with: a BYOK app or the provider's default app from the config.
pub(super) struct FlowApp {
    pub app_id: Option<AppId>,
    /// The app's name (what a server Dravo registers it on shows users).
    pub name: String,
    /// The website it registers with on such a server.
    pub website: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The app's own `User-Agent` for calls to its provider (BYOK apps only).
    pub user_agent: Option<String>,
    secret: FlowSecret,
}

/// Where the app's client secret is. `start` never needs it, so a BYOK secret stays sealed
/// until the callback exchanges a code.
enum FlowSecret {
    Sealed(Box<AppRecord>),
    Config(ClientSecret),
}

/// A provider's default (platform) app from `[providers.<name>]`.
pub(super) struct DefaultApp {
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    pub scopes: Scopes,
}

/// The apps flows run with.
pub(super) struct FlowApps {
    apps: Arc<Apps>,
    /// The platform app of each provider that has one in the config, checked once at start.
    defaults: HashMap<Provider, DefaultApp>,
}

impl FlowApps {
    /// The checked default apps (`default_apps`) over the tenant's `apps`.
    pub(super) fn new(defaults: HashMap<Provider, DefaultApp>, apps: Arc<Apps>) -> Self {
        FlowApps { apps, defaults }
    }

    /// The provider's default app, if the config has one.
    pub(super) fn default_app(&self, provider: Provider) -> Option<&DefaultApp> {
        self.defaults.get(&provider)
    }

    /// The app for a flow: the tenant's BYOK app `app_id`, or the provider's default app.
    pub(super) async fn flow_app(
        &self,
        owner: &Owner,
        provider: Provider,
        app_id: Option<&AppId>,
    ) -> Result<FlowApp> {
        match app_id {
            Some(id) => {
                let row = self.apps.record(owner, id).await?;
                if row.provider != provider {
                    return Err(Error::invalid(format!(
                        "OAuth app {id} is for {}, not {provider}",
                        row.provider
                    )));
                }
                Ok(FlowApp {
                    app_id: Some(id.clone()),
                    name: row.name.clone(),
                    website: row.website.clone(),
                    client_id: row.client_id.clone(),
                    scopes: row.scopes.clone(),
                    user_agent: row.user_agent.clone(),
                    secret: FlowSecret::Sealed(Box::new(row)),
                })
            }
            None if !providers::get(provider).hosting().app_has_credentials() => {
                Err(Error::NoDefaultApp(format!(
                    "{provider} has no default app: create a {provider} OAuth app (POST \
                     /v1/oauth-apps with provider, name and optionally scopes and website; \
                     Dravo registers it on each server users connect from) and pass its \
                     oauth_app_id"
                )))
            }
            None => {
                let app = self.defaults.get(&provider).ok_or_else(|| {
                    Error::NoDefaultApp(format!(
                        "no default app is configured for {provider}: set providers.{provider}.client_id and client_secret, or pass oauth_app_id"
                    ))
                })?;
                Ok(FlowApp {
                    app_id: None,
                    name: format!("{provider} default app"),
                    website: None,
                    client_id: app.client_id.as_str().to_owned(),
                    scopes: app.scopes.as_slice().to_vec(),
                    user_agent: None,
                    secret: FlowSecret::Config(app.client_secret.clone()),
                })
            }
        }
    }

    /// The app's client secret, opened for a call to its provider.
    pub(super) async fn flow_secret(&self, app: &FlowApp) -> Result<ClientSecret> {
        match &app.secret {
            FlowSecret::Config(secret) => Ok(secret.clone()),
            FlowSecret::Sealed(row) => self.apps.open_client_secret(row).await,
        }
    }
}

/// Checks each `[providers.<name>]` platform app once, into domain values.
pub(super) fn default_apps(config: &Config) -> Result<HashMap<Provider, DefaultApp>> {
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

//! What every call to a provider goes through: the HTTP client (built on first use) and each
//! registered provider's endpoints, overrides applied. The connect flow, the token lifecycle,
//! revocations and app checks are all handed this one part.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::Config;
use crate::domain::Provider;
use crate::providers::{self, EndpointOverrides, Endpoints, ProviderHttp};

pub(super) struct ProviderCalls {
    /// Built on first use: its TLS set-up (root certificates) would cost every CLI call
    /// several milliseconds otherwise.
    http: OnceLock<ProviderHttp>,
    /// `providers.timeout_seconds`, for the client.
    timeout: Duration,
    /// Every registered provider's endpoints, overrides applied.
    endpoints: HashMap<Provider, Endpoints>,
    /// The guarded client for servers that users name (`ProviderHttp::guarded`), built on
    /// first use: public addresses only, and the one that also allows private ones
    /// (`providers.<name>.allow_private_addresses`).
    guarded: [OnceLock<ProviderHttp>; 2],
    /// The providers whose config allows private addresses.
    allow_private: HashMap<Provider, bool>,
}

impl ProviderCalls {
    /// The client settings and endpoints `config` names.
    pub(super) fn of(config: &Config) -> Self {
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
        let allow_private = providers::ids()
            .map(|p| {
                let allowed = config
                    .providers
                    .get(p)
                    .is_some_and(|c| c.allow_private_addresses);
                (p, allowed)
            })
            .collect();
        ProviderCalls {
            http: OnceLock::new(),
            timeout: Duration::from_secs(config.providers.timeout_seconds),
            endpoints,
            guarded: [OnceLock::new(), OnceLock::new()],
            allow_private,
        }
    }

    /// The client for calls that are not made for an app (Dravo's own health check).
    pub(super) fn http(&self) -> &ProviderHttp {
        self.http.get_or_init(|| ProviderHttp::new(self.timeout))
    }

    /// The client for calls to `provider` made for an app: they carry the app's own
    /// `User-Agent`, else the provider's default one (Reddit's names Dravo), else the client's.
    /// Every call for an app (exchange, identity, refresh, revoke, check, lists, registering
    /// it on an instance) takes it here. A provider whose users name their server gets the
    /// guarded client.
    pub(super) fn http_for(
        &self,
        provider: Provider,
        app_user_agent: Option<&str>,
    ) -> ProviderHttp {
        let implementation = providers::get(provider);
        let default = implementation.default_user_agent();
        let client = if implementation.hosting().server_param().is_some() {
            self.guarded(provider)
        } else {
            self.http()
        };
        client.with_user_agent(app_user_agent.or(default.as_deref()))
    }

    /// Whether connects to `provider` may reach private addresses and plain `http`.
    pub(super) fn allows_private(&self, provider: Provider) -> bool {
        self.allow_private.get(&provider).copied().unwrap_or(false)
    }

    fn guarded(&self, provider: Provider) -> &ProviderHttp {
        let open = self.allows_private(provider);
        self.guarded[usize::from(open)].get_or_init(|| ProviderHttp::guarded(self.timeout, open))
    }

    pub(super) fn endpoints(&self, provider: Provider) -> &Endpoints {
        &self.endpoints[&provider]
    }
}

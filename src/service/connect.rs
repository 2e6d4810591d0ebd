//! The connect flow, the `Connect` part: `Connect::start` builds the provider's consent URL
//! with a sealed state; `Connect::finish` opens the state at the callback, trades the code for
//! tokens, asks the provider who the account is, and stores it (`save_connected`), or, with
//! `connect.require_confirmation`, holds it as a pending connection (`pending`). Each step of
//! the callback either succeeds or names a `Failure`; one function turns a failure into the
//! callback's outcome.

use std::sync::Arc;

use secrecy::ExposeSecret;
use serde_json::json;
use url::Url;

use super::accounts::Connected;
use super::children::{put_family, sync_children};
use super::events::{AccountEvent, EventDraft, Outbox};
use super::flow_apps::{FlowApp, FlowApps};
use super::instances::{AppOnServer, InstanceClient, Instances};
use super::keys::Vault;
use super::lifecycle::{SCOPES_NOT_GRANTED, Tokens, apply_tokens};
use super::pending::Pending;
use super::provider_calls::ProviderCalls;
use super::renewal::fingerprint;
use super::{Account, Dravo};
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::StateKeys;
use crate::crypto::state::{self, MAX_RETURN_URL_LEN, StateClaims, StateError};
use crate::domain::{
    AccountId, AccountKind, AccountStatus, AppId, Owner, Provider, Timestamp, clean_provider_text,
};
use crate::error::{Error, Result};
use crate::metrics::{ConnectOutcome, Metrics};
use crate::providers::http::{safe_code, safe_description};
use crate::providers::{self, AuthorizeParams, CodeExchange, Identity, TokenSet};
use crate::store::{AccountRecord, Store};

/// The query of a provider's callback.
#[derive(Debug, Default, Clone)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Why a connect did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The state is missing, forged, expired, replayed or for another provider. Never redirected.
    BadState,
    /// The user declined, or the provider's redirect carried no code.
    Denied,
    /// The provider refused or failed the code exchange or the identity call.
    Provider,
    /// Something failed inside Dravo.
    Internal,
}

/// How the callback ended; the HTTP layer turns it into a redirect or a page.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    Connected {
        account: Box<Account>,
        /// The return URL with `status=connected&provider=…&account_id=…`, if there is one.
        redirect: Option<String>,
    },
    /// `connect.require_confirmation`: the consent waits for the dashboard's confirmation.
    Pending {
        /// The return URL with `status=pending&provider=…&connection_id=…&confirm=…`.
        redirect: String,
    },
    Failed {
        kind: FailureKind,
        code: String,
        description: String,
        /// The return URL with `status=error&error=…`, if there is one and the state was good.
        redirect: Option<String>,
    },
}

/// The `outcome` label a callback counts under in `dravo_connects_total`.
fn metric_outcome(outcome: &CallbackOutcome) -> ConnectOutcome {
    match outcome {
        CallbackOutcome::Connected { .. } => ConnectOutcome::Connected,
        CallbackOutcome::Pending { .. } => ConnectOutcome::Pending,
        CallbackOutcome::Failed { kind, .. } => match kind {
            FailureKind::BadState => ConnectOutcome::BadState,
            FailureKind::Denied => ConnectOutcome::Denied,
            FailureKind::Provider => ConnectOutcome::ProviderError,
            FailureKind::Internal => ConnectOutcome::Internal,
        },
    }
}

/// What a good callback produced.
enum Completed {
    Connected(Box<Account>),
    Pending(super::pending::PendingConnection, String),
}

/// Why a callback step stopped the flow.
struct Failure {
    kind: FailureKind,
    code: String,
    description: String,
}

impl Failure {
    fn new(kind: FailureKind, code: &str, description: &str) -> Self {
        Failure {
            kind,
            code: code.to_owned(),
            description: description.to_owned(),
        }
    }

    fn bad_state(why: &str) -> Self {
        Failure::new(
            FailureKind::BadState,
            "invalid_state",
            &format!("This sign-in link is not valid: {why}. Start again from your dashboard."),
        )
    }

    /// Something inside Dravo failed; the cause goes to the log only.
    fn internal(what: &str, err: &Error) -> Self {
        tracing::error!(error = %err, "{what}");
        Failure::new(
            FailureKind::Internal,
            "internal",
            "Dravo could not complete the sign-in",
        )
    }

    fn provider(err: &crate::error::ProviderError) -> Self {
        Failure::new(FailureKind::Provider, err.code(), &err.description())
    }
}

/// The query parameters Dravo sets on the return URL.
const RESULT_PARAMS: [&str; 7] = [
    "status",
    "provider",
    "account_id",
    "connection_id",
    "confirm",
    "error",
    "error_description",
];

/// Sets the result parameters on a URL, keeping its other query parameters. Any result
/// parameter it already had is replaced, so a dashboard never reads a stale one first.
fn with_params(base: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = Url::parse(base).ok()?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !RESULT_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() || !params.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(kept)
            .extend_pairs(params);
    }
    Some(url.into())
}

/// True when `url` lies under `prefix`: same scheme, host and port, and a path that starts
/// at a segment boundary. Compared on parsed URLs, so `https://dash.example.com.evil.io` does
/// not pass for `https://dash.example.com`.
fn under_prefix(url: &Url, prefix: &Url) -> bool {
    if url.scheme() != prefix.scheme()
        || url.host_str() != prefix.host_str()
        || url.port_or_known_default() != prefix.port_or_known_default()
    {
        return false;
    }
    let (path, base) = (url.path(), prefix.path());
    base.ends_with('/') && path.starts_with(base)
        || path == base
        || path.starts_with(base) && path[base.len()..].starts_with('/')
}

/// A server named for a provider whose users name theirs, and only for one.
fn check_server_given(provider: Provider, server: Option<&str>) -> Result<()> {
    match (providers::get(provider).hosting().server_param(), server) {
        (Some(param), None) => Err(Error::invalid(format!(
            "{param} is required for {provider}: the server to connect on, as a host, host:port \
             or URL (for example mastodon.social)"
        ))),
        (None, Some(_)) => {
            let named: Vec<String> = providers::all()
                .filter_map(|p| {
                    p.hosting()
                        .server_param()
                        .map(|param| format!("{param} ({})", p.id()))
                })
                .collect();
            Err(Error::invalid(format!(
                "{provider} has no server to name: only {} take one",
                named.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// The connect flow: starting it, its callback, the pending connections that wait for a
/// dashboard's confirmation (`pending`), and storing the connected account with its Pages or
/// organizations. It owns the allowed return URLs and the pending connections; it is handed
/// the configuration (the dashboard's return URL, `connect.require_confirmation`), the store,
/// the vault (the state's keys, sealing the tokens), the clock, where callbacks arrive, the
/// provider calls, the apps flows run with, the outbox (its events), the tokens (whose rules
/// a stored token follows) and the metrics (its outcomes).
pub(super) struct Connect {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    /// Where callbacks arrive.
    public_url: String,
    calls: Arc<ProviderCalls>,
    flow_apps: Arc<FlowApps>,
    /// The apps' registrations on the servers users name.
    instances: Arc<Instances>,
    outbox: Arc<Outbox>,
    tokens: Arc<Tokens>,
    metrics: Metrics,
    /// `dashboard.allowed_return_urls`, parsed (`allowed_return_urls`).
    allowed_return_urls: Vec<Url>,
    /// The consents that wait for a confirmation.
    pending: Pending,
}

/// Parses `dashboard.allowed_return_urls`.
pub(super) fn allowed_return_urls(config: &Config) -> Result<Vec<Url>> {
    config
        .dashboard
        .allowed_return_urls
        .iter()
        .map(|u| {
            Url::parse(u).map_err(|e| Error::config(format!("dashboard.allowed_return_urls: {e}")))
        })
        .collect()
}

impl Connect {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        public_url: String,
        calls: Arc<ProviderCalls>,
        flow_apps: Arc<FlowApps>,
        instances: Arc<Instances>,
        outbox: Arc<Outbox>,
        tokens: Arc<Tokens>,
        metrics: Metrics,
        allowed_return_urls: Vec<Url>,
    ) -> Self {
        let pending = Pending::new(store.clone(), vault.clone(), clock.clone());
        Connect {
            config,
            store,
            vault,
            clock,
            public_url,
            calls,
            flow_apps,
            instances,
            outbox,
            tokens,
            metrics,
            allowed_return_urls,
            pending,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The callback URL for `provider`.
    fn redirect_uri(&self, provider: Provider) -> String {
        super::apps::redirect_uri(&self.public_url, provider)
    }

    /// Whether new connections wait for the dashboard's confirmation.
    pub(super) fn requires_confirmation(&self) -> bool {
        self.config.connect.require_confirmation
    }

    /// Turns the owner's pending connection into an account, when `code` is the one the
    /// callback gave (`Pending::take`). The account is then stored as any connect stores it
    /// (events and webhooks included). A wrong code leaves the connection waiting.
    pub(super) async fn confirm(
        &self,
        owner: &Owner,
        id: &AccountId,
        code: &str,
    ) -> Result<Account> {
        let connected = self.pending.take(owner, id, code).await?;
        self.save_connected(connected).await
    }

    /// Forgets pending connections whose time to be confirmed has passed.
    pub(super) async fn forget_unconfirmed(&self, now: Timestamp) -> Result<usize> {
        self.pending.forget_unconfirmed(now).await
    }

    /// Checks a `return_url` against `dashboard.allowed_return_urls`; returns it normalised.
    /// Its length is checked on the normalised (percent-encoded) form, which is what the
    /// state carries, so every URL accepted here fits a state.
    fn check_return_url(&self, raw: &str) -> Result<String> {
        let too_long = || {
            Error::invalid(format!(
                "return_url must be at most {MAX_RETURN_URL_LEN} bytes once percent-encoded"
            ))
        };
        if raw.len() > MAX_RETURN_URL_LEN * 9 {
            // Far beyond any normalised form that could fit: refuse before parsing.
            return Err(too_long());
        }
        let url = Url::parse(raw)
            .map_err(|_| Error::invalid("return_url must be an absolute http(s) URL"))?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(Error::invalid(
                "return_url must be an absolute http(s) URL without credentials",
            ));
        }
        if !self
            .allowed_return_urls
            .iter()
            .any(|prefix| under_prefix(&url, prefix))
        {
            return Err(Error::invalid(
                "return_url is not allowed: it must start with one of dashboard.allowed_return_urls",
            ));
        }
        let normalised: String = url.into();
        if normalised.len() > MAX_RETURN_URL_LEN {
            return Err(too_long());
        }
        Ok(normalised)
    }

    /// Builds the provider's consent URL for `owner`; `server` is the server the user named,
    /// for a provider whose users name theirs (a Mastodon instance).
    pub(super) async fn start(
        &self,
        owner: &Owner,
        provider: Provider,
        app_id: Option<&AppId>,
        return_url: Option<&str>,
        server: Option<&str>,
    ) -> Result<String> {
        let return_url = return_url.map(|r| self.check_return_url(r)).transpose()?;
        if self.requires_confirmation()
            && return_url.is_none()
            && self.config.dashboard.return_url.is_none()
        {
            return Err(Error::invalid(
                "return_url is required: connect.require_confirmation is on, and the confirmation code can only go to your dashboard (or set dashboard.return_url)",
            ));
        }
        let implementation = providers::get(provider);
        check_server_given(provider, server)?;
        let app = self.flow_apps.flow_app(owner, provider, app_id).await?;
        let on_server = match (implementation.hosting().server_param(), server) {
            (Some(param), Some(input)) => Some(
                self.client_on_server(owner, provider, &app, param, input)
                    .await?,
            ),
            _ => None,
        };
        let claims = StateClaims::new(
            provider,
            owner.as_str(),
            app.app_id.as_ref().map(AppId::as_str),
            return_url.as_deref(),
            self.now(),
        )
        .on_server(on_server.as_ref().map(|c| c.server.as_str()));
        let keys = self.vault.ring().current().clone();
        let state = state::seal(keys.state_sealer(), &claims);
        let pkce = on_server
            .as_ref()
            .map_or(implementation.uses_pkce(), |c| c.pkce);
        let challenge = pkce
            .then(|| state::pkce_challenge(&state::pkce_verifier(keys.state_key(), &claims.nonce)));
        let redirect_uri = self.redirect_uri(provider);
        let (endpoints, client_id, scopes) = match &on_server {
            Some(c) => (&c.endpoints, c.client_id.as_str(), c.scopes.as_slice()),
            None => (
                self.calls.endpoints(provider),
                app.client_id.as_str(),
                app.scopes.as_slice(),
            ),
        };
        Ok(implementation.authorize_url(
            endpoints,
            &AuthorizeParams {
                client_id,
                redirect_uri: &redirect_uri,
                scopes,
                state: &state,
                code_challenge: challenge.as_deref(),
            },
        ))
    }

    /// The app's client on the server the user named, registered there first if need be.
    async fn client_on_server(
        &self,
        owner: &Owner,
        provider: Provider,
        app: &FlowApp,
        param: &str,
        input: &str,
    ) -> Result<InstanceClient> {
        let app_id = app.app_id.as_ref().ok_or_else(|| {
            Error::NoDefaultApp(format!("{provider} has no default app: pass oauth_app_id"))
        })?;
        self.instances
            .client_for(
                &AppOnServer {
                    owner,
                    provider,
                    app_id,
                    name: &app.name,
                    website: app.website.as_deref(),
                    scopes: &app.scopes,
                    user_agent: app.user_agent.as_deref(),
                },
                param,
                input,
            )
            .await
    }

    /// Handles the provider's redirect back to Dravo.
    pub(super) async fn finish(
        &self,
        provider: Provider,
        params: CallbackParams,
    ) -> CallbackOutcome {
        let outcome = self.handle_callback(provider, params).await;
        self.metrics.connect(provider, metric_outcome(&outcome));
        outcome
    }

    async fn handle_callback(&self, provider: Provider, params: CallbackParams) -> CallbackOutcome {
        let (claims, state_keys) = match self.accept_state(provider, params.state.as_deref()).await
        {
            Ok(accepted) => accepted,
            Err(failure) => return self.failed(provider, failure, None),
        };
        // From here the state is good: failures go back to the dashboard when it has a URL.
        let destination = claims.return_url.clone().or_else(|| {
            self.config
                .dashboard
                .return_url
                .as_ref()
                .map(|u| u.to_string())
        });
        match self
            .complete_connect(
                provider,
                &claims,
                &state_keys,
                &params,
                destination.as_deref(),
            )
            .await
        {
            Ok(Completed::Connected(account)) => {
                tracing::info!(%provider, account_id = %account.id, "account connected");
                let redirect = destination.as_deref().and_then(|d| {
                    with_params(
                        d,
                        &[
                            ("status", "connected"),
                            ("provider", provider.as_str()),
                            ("account_id", account.id.as_str()),
                        ],
                    )
                });
                CallbackOutcome::Connected { account, redirect }
            }
            Ok(Completed::Pending(pending, redirect)) => {
                tracing::info!(%provider, connection_id = %pending.id, "connection waits for confirmation");
                CallbackOutcome::Pending { redirect }
            }
            Err(failure) => self.failed(provider, failure, destination.as_deref()),
        }
    }

    /// Opens the state, checks it belongs to this provider, and uses it up. Returns its claims
    /// and the keys that opened it (a state sealed before a rotation is opened, and its PKCE
    /// verifier derived, with the old key's during its grace period).
    async fn accept_state(
        &self,
        provider: Provider,
        raw: Option<&str>,
    ) -> Result<(StateClaims, Arc<StateKeys>), Failure> {
        let raw = raw
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Failure::bad_state("it carries no state"))?;
        let now = self.now();
        let keys = self
            .vault
            .state_keys_for(raw, now)
            .await
            .ok_or_else(|| Failure::bad_state(&state::keyless_error(raw).to_string()))?;
        let claims = state::open(keys.sealer(), raw, now).map_err(|e| match e {
            StateError::Expired => Failure::bad_state("it has expired"),
            other => Failure::bad_state(&other.to_string()),
        })?;
        if claims.provider != provider {
            return Err(Failure::bad_state("it was started for another provider"));
        }
        let (nonce, expires) = (claims.nonce_hex(), claims.expires_at);
        let fresh = self
            .store
            .write(move |tx| {
                Box::pin(async move { tx.consume_state_nonce(&nonce, expires, now).await })
            })
            .await
            .map_err(|e| Failure::internal("cannot record the oauth state", &e))?;
        if !fresh {
            return Err(Failure::bad_state("it has already been used"));
        }
        Ok((claims, keys))
    }

    /// Everything after a good state: the provider's answer, the code exchange, the identity
    /// and the stored account (or, with confirmation required, the pending connection and
    /// the redirect that carries its code to `destination`).
    async fn complete_connect(
        &self,
        provider: Provider,
        claims: &StateClaims,
        state_keys: &StateKeys,
        params: &CallbackParams,
        destination: Option<&str>,
    ) -> Result<Completed, Failure> {
        if let Some(error) = params.error.as_deref().filter(|e| !e.is_empty()) {
            let description = params.error_description.as_deref().unwrap_or_default();
            return Err(Failure::new(FailureKind::Denied, error, description));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Failure::new(
                    FailureKind::Denied,
                    "invalid_request",
                    "the provider sent no authorization code",
                )
            })?;
        let owner = Owner::parse("tenant", &claims.tenant)
            .map_err(|_| Failure::bad_state("it names no valid tenant"))?;
        let app_id = claims
            .app_id
            .as_deref()
            .map(AppId::parse)
            .transpose()
            .map_err(|_| Failure::bad_state("it names no valid app"))?;
        let app = self
            .flow_apps
            .flow_app(&owner, provider, app_id.as_ref())
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Failure::new(
                    FailureKind::Internal,
                    "app_not_found",
                    "the OAuth app was deleted during sign-in",
                ),
                Error::NoDefaultApp(m) => Failure::new(FailureKind::Internal, "no_default_app", &m),
                other => Failure::internal("cannot load the app for an oauth callback", &other),
            })?;
        let confirm_at = match (self.requires_confirmation(), destination) {
            (false, _) => None,
            (true, Some(d)) => Some(d),
            (true, None) => {
                // Checked at start; only a configuration changed mid-flow gets here. The
                // code is not exchanged: there is nowhere to send its confirmation.
                return Err(Failure::new(
                    FailureKind::Internal,
                    "confirmation_unavailable",
                    "connect.require_confirmation is on but this sign-in has no return URL",
                ));
            }
        };
        let on_server = self.server_of_state(provider, claims, &app).await?;
        let (tokens, identity) = self
            .exchange_and_identify(provider, claims, state_keys, &app, on_server.as_ref(), code)
            .await?;
        let (children, children_unlisted) =
            super::children::children_at_connect(&self.calls, provider, &app, &tokens).await;
        let connected = Connected {
            owner,
            provider,
            oauth_app_id: app.app_id,
            identity,
            tokens,
            requested_scopes: on_server.as_ref().map_or(app.scopes, |c| c.scopes.clone()),
            issued_at: self.now(),
            preferred_id: None,
            children,
            children_unlisted,
            server: on_server.map(|c| c.server),
        };
        let Some(destination) = confirm_at else {
            return self
                .save_connected(connected)
                .await
                .map(|account| Completed::Connected(Box::new(account)))
                .map_err(|e| Failure::internal("cannot store a connected account", &e));
        };
        let pending = self
            .pending
            .hold(connected)
            .await
            .map_err(|e| Failure::internal("cannot store a pending connection", &e))?;
        let redirect = with_params(
            destination,
            &[
                ("status", "pending"),
                ("provider", provider.as_str()),
                ("connection_id", pending.id.as_str()),
                ("confirm", pending.code.as_str()),
            ],
        )
        .ok_or_else(|| {
            Failure::new(
                FailureKind::Internal,
                "internal",
                "the return URL is not a valid URL",
            )
        })?;
        Ok(Completed::Pending(pending, redirect))
    }

    /// The app's registration on the server the state names, for a provider whose users
    /// name theirs; `None` for the others.
    async fn server_of_state(
        &self,
        provider: Provider,
        claims: &StateClaims,
        app: &FlowApp,
    ) -> Result<Option<InstanceClient>, Failure> {
        let named = providers::get(provider).hosting().server_param().is_some();
        let (server, app_id) = match (named, &claims.server, &app.app_id) {
            (false, None, _) => return Ok(None),
            (true, Some(server), Some(app_id)) => (server, app_id),
            _ => return Err(Failure::bad_state("it names no server for this provider")),
        };
        match self.instances.registered(app_id, server).await {
            Ok(client) => Ok(Some(client)),
            Err(Error::NotFound(m)) => {
                Err(Failure::new(FailureKind::Internal, "app_not_found", &m))
            }
            Err(other) => Err(Failure::internal(
                "cannot open an app's registration",
                &other,
            )),
        }
    }

    /// Trades the code for tokens with the app's credentials (on a server the user named,
    /// the ones that server gave the app), then asks who the account is.
    async fn exchange_and_identify(
        &self,
        provider: Provider,
        claims: &StateClaims,
        state_keys: &StateKeys,
        app: &FlowApp,
        on_server: Option<&InstanceClient>,
        code: &str,
    ) -> Result<(TokenSet, Identity), Failure> {
        let client_secret = match on_server {
            Some(c) => c.client_secret.clone(),
            None => self
                .flow_apps
                .flow_secret(app)
                .await
                .map_err(|e| Failure::internal("cannot open an app's client secret", &e))?,
        };
        let implementation = providers::get(provider);
        let pkce = on_server.map_or(implementation.uses_pkce(), |c| c.pkce);
        let verifier = pkce.then(|| state::pkce_verifier(state_keys.pkce_key(), &claims.nonce));
        let redirect_uri = self.redirect_uri(provider);
        let (endpoints, client_id) = match on_server {
            Some(c) => (&c.endpoints, c.client_id.as_str()),
            None => (self.calls.endpoints(provider), app.client_id.as_str()),
        };
        let http = self.calls.http_for(provider, app.user_agent.as_deref());
        let exchange = CodeExchange {
            client_id,
            client_secret: client_secret.expose(),
            redirect_uri: &redirect_uri,
            code: implementation.clean_code(code),
            code_verifier: verifier.as_deref(),
        };
        let tokens = implementation
            .exchange(&http, endpoints, &exchange)
            .await
            .map_err(|e| Failure::provider(&e))?;
        let identity = implementation
            .identify(&http, endpoints, &tokens)
            .await
            .map_err(|e| Failure::provider(&e))?;
        Ok((tokens, identity))
    }

    /// The one mapping from a failed step to the callback's outcome: logged, made safe to
    /// show, and sent back to the dashboard when the state was good and names a destination.
    fn failed(
        &self,
        provider: Provider,
        failure: Failure,
        destination: Option<&str>,
    ) -> CallbackOutcome {
        if failure.kind == FailureKind::BadState {
            tracing::warn!(%provider, reason = %crate::domain::escape_untrusted(&failure.description), "oauth callback refused");
            return CallbackOutcome::Failed {
                kind: failure.kind,
                code: failure.code,
                description: failure.description,
                redirect: None,
            };
        }
        let code = safe_code(&failure.code);
        let description = safe_description(&failure.description);
        tracing::warn!(%provider, error = %code, description = %crate::domain::escape_untrusted(&description), "oauth connect failed");
        let redirect = destination.and_then(|d| {
            let mut params = vec![
                ("status", "error"),
                ("provider", provider.as_str()),
                ("error", code.as_str()),
            ];
            if !description.is_empty() {
                params.push(("error_description", description.as_str()));
            }
            with_params(d, &params)
        });
        CallbackOutcome::Failed {
            kind: failure.kind,
            code,
            description,
            redirect,
        }
    }

    /// Stores a newly connected account, or updates it when the same provider account was
    /// connected before by this owner (same id, fresh tokens), in one transaction with its
    /// `connected` or `reconnected` event (and `recovered` when it needed a new consent).
    pub(super) async fn save_connected(&self, c: Connected) -> Result<Account> {
        let now = self.now();
        let policy = self.tokens.policy();
        let (vault, outbox) = (self.vault.clone(), self.outbox.clone());
        let renewal = providers::get(c.provider).renewal();
        let record = self.store
            .write(move |tx| Box::pin(async move {
                let existing =
                    tx.find_account(&c.owner, c.provider, &c.identity.provider_account_id).await?;
                let before = match &existing {
                    Some(e) => tx.account_by_id(&e.id).await?,
                    None => None,
                };
                let (id, created_at) = match existing {
                    Some(e) => (e.id, e.created_at),
                    None => (
                        c.preferred_id.unwrap_or_else(AccountId::generate),
                        now,
                    ),
                };
                let mut record = AccountRecord {
                    id,
                    owner: c.owner.clone(),
                    provider: c.provider,
                    oauth_app_id: c.oauth_app_id,
                    provider_account_id: c.identity.provider_account_id.clone(),
                    username: c.identity.username.and_then(clean_provider_text),
                    display_name: c.identity.display_name.and_then(clean_provider_text),
                    scopes: c.tokens.granted_scopes.clone().unwrap_or_else(|| c.requested_scopes.clone()),
                    status: AccountStatus::Active,
                    status_reason: None,
                    access_token_sealed: Vec::new(),
                    // A new consent starts a new grant: the old refresh token is not kept.
                    refresh_token_sealed: None,
                    expires_at: None,
                    refresh_expires_at: None,
                    reauth_by: None,
                    token_issued_at: None,
                    next_refresh_at: None,
                    refresh_failures: 0,
                    warned_for: None,
                    created_at,
                    updated_at: now,
                    kind: AccountKind::User,
                    parent_id: None,
                    tasks: None,
                    // `apply_tokens` moves it on from the replaced tokens' version.
                    token_version: before.as_ref().map_or(0, |b| b.token_version),
                    server: c.server.clone(),
                };
                let keys = vault.sealing_keys(tx).await?;
                let expiring =
                    apply_tokens(&keys, &mut record, &c.tokens, renewal, c.issued_at, policy);
                let missing = match &c.tokens.granted_scopes {
                    Some(granted) => providers::get(c.provider).missing_scopes(&c.requested_scopes, granted),
                    None => Vec::new(),
                };
                if !missing.is_empty() && record.status_reason.is_none() {
                    record.status_reason = Some(format!(
                        "{SCOPES_NOT_GRANTED}: the user did not grant {}; calls that need {} will fail until the account is connected again with {}",
                        missing.join(", "),
                        if missing.len() == 1 { "it" } else { "them" },
                        if missing.len() == 1 { "it" } else { "them" },
                    ));
                }
                put_family(tx, &record, now).await?;
                let mut detail = json!({
                    "fingerprint": fingerprint(c.tokens.access_token.expose_secret()),
                    "expires_at": record.expires_at.map(|t| t.to_string()),
                    "scopes": record.scopes,
                });
                if !missing.is_empty() {
                    detail["missing_scopes"] = json!(missing);
                }
                if let Some(unlisted) = &c.children_unlisted {
                    detail["children_unlisted"] = unlisted.clone();
                }
                match &before {
                    None => outbox.record_event(
                        tx,
                        &record,
                        EventDraft::new(AccountEvent::Connected, detail),
                        now,
                    ).await?,
                    Some(old) => {
                        outbox.record_event(
                            tx,
                            &record,
                            EventDraft::new(AccountEvent::Reconnected, detail),
                            now,
                        ).await?;
                        if old.status == AccountStatus::NeedsReauth || old.refresh_failures > 0 {
                            outbox.record_event(
                                tx,
                                &record,
                                EventDraft::new(
                                    AccountEvent::Recovered,
                                    json!({"via": "reconnect", "previous_status": old.status.as_str()}),
                                ),
                                now,
                            ).await?;
                        }
                    }
                }
                if let Some(expiring) = expiring {
                    outbox.record_event(tx, &record, expiring, now).await?;
                }
                if let Some(children) = &c.children {
                    sync_children(&vault, &outbox, tx, &record, children, now).await?;
                }
                Ok(record)
            }))
            .await?;
        Ok(record.into())
    }
}

/// The front's side of the connect flow: it only delegates to `Connect`.
impl Dravo {
    /// Builds the provider's consent URL for `owner` (see `Connect::start`); `server` is the
    /// server the user named (a Mastodon instance), for providers whose users name one.
    pub async fn start_connect(
        &self,
        owner: &Owner,
        provider: Provider,
        app_id: Option<&AppId>,
        return_url: Option<&str>,
        server: Option<&str>,
    ) -> Result<String> {
        self.0
            .connect
            .start(owner, provider, app_id, return_url, server)
            .await
    }

    /// Handles the provider's redirect back to Dravo (see `Connect::finish`).
    pub async fn finish_connect(
        &self,
        provider: Provider,
        params: CallbackParams,
    ) -> CallbackOutcome {
        self.0.connect.finish(provider, params).await
    }

    /// Whether new connections wait for the dashboard's confirmation.
    pub fn requires_confirmation(&self) -> bool {
        self.0.connect.requires_confirmation()
    }

    /// Turns the owner's pending connection into an account (see `Connect::confirm`).
    pub async fn confirm_connection(
        &self,
        owner: &Owner,
        id: &AccountId,
        code: &str,
    ) -> Result<Account> {
        self.0.connect.confirm(owner, id, code).await
    }

    /// Forgets pending connections whose time to be confirmed has passed (their sealed
    /// tokens with them); returns how many.
    pub async fn forget_unconfirmed(&self, now: Timestamp) -> Result<usize> {
        self.0.connect.forget_unconfirmed(now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn under(url: &str, prefix: &str) -> bool {
        under_prefix(&Url::parse(url).unwrap(), &Url::parse(prefix).unwrap())
    }

    #[test]
    fn result_params_replace_stale_ones_and_keep_the_rest() {
        let url = with_params(
            "https://dash.example.com/done?tab=2&status=error&error=x",
            &[("status", "connected"), ("account_id", "acc_1")],
        )
        .unwrap();
        assert_eq!(
            url,
            "https://dash.example.com/done?tab=2&status=connected&account_id=acc_1"
        );
    }

    #[test]
    fn prefix_match_is_on_parsed_urls() {
        assert!(under(
            "https://dash.example.com/x?y=1",
            "https://dash.example.com"
        ));
        assert!(under(
            "https://dash.example.com/app/done",
            "https://dash.example.com/app"
        ));
        assert!(under(
            "https://dash.example.com/app",
            "https://dash.example.com/app"
        ));
        assert!(!under(
            "https://dash.example.com/application",
            "https://dash.example.com/app"
        ));
        assert!(!under(
            "https://dash.example.com.evil.io/",
            "https://dash.example.com"
        ));
        assert!(!under(
            "https://dash.example.com@evil.io/",
            "https://dash.example.com"
        ));
        assert!(!under(
            "http://dash.example.com/",
            "https://dash.example.com"
        ));
        assert!(!under(
            "https://dash.example.com:8443/",
            "https://dash.example.com"
        ));
        assert!(under(
            "https://DASH.example.com/",
            "https://dash.example.com"
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// A URL accepted under an allowed prefix is always on the prefix's origin, whatever
            /// tricks its text plays (userinfo, look-alike hosts, ports, encodings).
            #[test]
            fn an_accepted_url_never_leaves_the_prefix_origin(
                raw in prop_oneof![
                    "https?://[a-z.@:%0-9-]{1,40}(/[ -~]{0,40})?",
                    "https://dash\\.example\\.com[ -~]{0,40}",
                    "[ -~]{0,60}",
                ],
            ) {
                let prefix = Url::parse("https://dash.example.com/app").unwrap();
                if let Ok(url) = Url::parse(&raw)
                    && under_prefix(&url, &prefix)
                {
                    prop_assert_eq!(url.scheme(), "https");
                    prop_assert_eq!(url.host_str(), Some("dash.example.com"));
                    prop_assert_eq!(url.port_or_known_default(), Some(443));
                    prop_assert!(url.path() == "/app" || url.path().starts_with("/app/"));
                }
            }
        }
    }
}

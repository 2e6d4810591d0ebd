//! The connect flow: `start_connect` builds the provider's consent URL with a sealed state;
//! `finish_connect` opens the state at the callback, trades the code for tokens, asks the
//! provider who the account is, and stores it. Each step of the callback either succeeds or
//! names a `Failure`; one function turns a failure into the callback's outcome.

use std::sync::Arc;

use url::Url;

use super::{Account, Dravo};
use crate::crypto::StateKeys;
use crate::crypto::state::{self, MAX_RETURN_URL_LEN, StateClaims, StateError};
use crate::domain::{AppId, ClientSecret, Owner, Provider};
use crate::error::{Error, Result};
use crate::metrics::ConnectOutcome;
use crate::providers::http::{safe_code, safe_description};
use crate::providers::{self, AuthorizeParams, CodeExchange, Identity, TokenSet};
use crate::store::AppRecord;

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

/// The app a flow runs with: a BYOK app or the provider's default app from the config.
pub(super) struct FlowApp {
    pub app_id: Option<AppId>,
    pub client_id: String,
    pub scopes: Vec<String>,
    secret: FlowSecret,
}

/// Where the app's client secret is. `start` never needs it, so a BYOK secret stays sealed
/// until the callback exchanges a code.
enum FlowSecret {
    Sealed(Box<AppRecord>),
    Config(ClientSecret),
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

impl Dravo {
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
            .0
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

    /// The app for a flow: the tenant's BYOK app `app_id`, or the provider's default app.
    pub(super) async fn flow_app(
        &self,
        owner: &Owner,
        provider: Provider,
        app_id: Option<&AppId>,
    ) -> Result<FlowApp> {
        match app_id {
            Some(id) => {
                let row = self.0.apps.record(owner, id).await?;
                if row.provider != provider {
                    return Err(Error::invalid(format!(
                        "OAuth app {id} is for {}, not {provider}",
                        row.provider
                    )));
                }
                Ok(FlowApp {
                    app_id: Some(id.clone()),
                    client_id: row.client_id.clone(),
                    scopes: row.scopes.clone(),
                    secret: FlowSecret::Sealed(Box::new(row)),
                })
            }
            None => {
                let app = self.0.default_apps.get(&provider).ok_or_else(|| {
                    Error::NoDefaultApp(format!(
                        "no default app is configured for {provider}: set providers.{provider}.client_id and client_secret, or pass oauth_app_id"
                    ))
                })?;
                Ok(FlowApp {
                    app_id: None,
                    client_id: app.client_id.as_str().to_owned(),
                    scopes: app.scopes.as_slice().to_vec(),
                    secret: FlowSecret::Config(app.client_secret.clone()),
                })
            }
        }
    }

    /// The app's client secret, opened for a call to its provider.
    pub(super) fn flow_secret(&self, app: &FlowApp) -> Result<ClientSecret> {
        match &app.secret {
            FlowSecret::Config(secret) => Ok(secret.clone()),
            FlowSecret::Sealed(row) => self.0.apps.open_client_secret(row),
        }
    }

    /// Builds the provider's consent URL for `owner`.
    pub async fn start_connect(
        &self,
        owner: &Owner,
        provider: Provider,
        app_id: Option<&AppId>,
        return_url: Option<&str>,
    ) -> Result<String> {
        let return_url = return_url.map(|r| self.check_return_url(r)).transpose()?;
        if self.requires_confirmation()
            && return_url.is_none()
            && self.0.config.dashboard.return_url.is_none()
        {
            return Err(Error::invalid(
                "return_url is required: connect.require_confirmation is on, and the confirmation code can only go to your dashboard (or set dashboard.return_url)",
            ));
        }
        let app = self.flow_app(owner, provider, app_id).await?;
        let claims = StateClaims::new(
            provider,
            owner.as_str(),
            app.app_id.as_ref().map(AppId::as_str),
            return_url.as_deref(),
            self.now(),
        );
        let keys = self.keys().current().clone();
        let state = state::seal(keys.state_sealer(), &claims);
        let implementation = providers::get(provider);
        let challenge = implementation
            .uses_pkce()
            .then(|| state::pkce_challenge(&state::pkce_verifier(keys.state_key(), &claims.nonce)));
        let redirect_uri = self.redirect_uri(provider);
        Ok(implementation.authorize_url(
            self.endpoints(provider),
            &AuthorizeParams {
                client_id: &app.client_id,
                redirect_uri: &redirect_uri,
                scopes: &app.scopes,
                state: &state,
                code_challenge: challenge.as_deref(),
            },
        ))
    }

    /// Handles the provider's redirect back to Dravo.
    pub async fn finish_connect(
        &self,
        provider: Provider,
        params: CallbackParams,
    ) -> CallbackOutcome {
        let outcome = self.handle_callback(provider, params).await;
        self.0.metrics.connect(provider, metric_outcome(&outcome));
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
            self.0
                .config
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
            .state_keys_for(raw, now)
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
            .0
            .store
            .write(move |tx| tx.consume_state_nonce(&nonce, expires, now))
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
        let (tokens, identity) = self
            .exchange_and_identify(provider, claims, state_keys, &app, code)
            .await?;
        let children = self
            .children_at_connect(provider, &tokens, &app.scopes)
            .await;
        let connected = super::accounts::Connected {
            owner,
            provider,
            oauth_app_id: app.app_id,
            identity,
            tokens,
            requested_scopes: app.scopes,
            issued_at: self.now(),
            preferred_id: None,
            children,
        };
        let Some(destination) = confirm_at else {
            return self
                .save_connected(connected)
                .await
                .map(|account| Completed::Connected(Box::new(account)))
                .map_err(|e| Failure::internal("cannot store a connected account", &e));
        };
        let pending = self
            .hold_for_confirmation(connected)
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

    /// Trades the code for tokens with the app's credentials, then asks who the account is.
    async fn exchange_and_identify(
        &self,
        provider: Provider,
        claims: &StateClaims,
        state_keys: &StateKeys,
        app: &FlowApp,
        code: &str,
    ) -> Result<(TokenSet, Identity), Failure> {
        let client_secret = self
            .flow_secret(app)
            .map_err(|e| Failure::internal("cannot open an app's client secret", &e))?;
        let implementation = providers::get(provider);
        let verifier = implementation
            .uses_pkce()
            .then(|| state::pkce_verifier(state_keys.pkce_key(), &claims.nonce));
        let redirect_uri = self.redirect_uri(provider);
        let endpoints = self.endpoints(provider);
        let exchange = CodeExchange {
            client_id: &app.client_id,
            client_secret: client_secret.expose(),
            redirect_uri: &redirect_uri,
            code: implementation.clean_code(code),
            code_verifier: verifier.as_deref(),
        };
        let tokens = implementation
            .exchange(self.http(), endpoints, &exchange)
            .await
            .map_err(|e| Failure::provider(&e))?;
        let identity = implementation
            .identify(self.http(), endpoints, &tokens)
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

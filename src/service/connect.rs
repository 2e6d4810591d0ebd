//! The connect flow: `start_connect` builds the provider's consent URL with a signed state;
//! `finish_connect` checks the state at the callback, trades the code for tokens, asks the
//! provider who the account is, and stores it.

use std::sync::Arc;

use url::Url;

use super::{Account, Dravo};
use crate::crypto::state::{self, StateClaims, StateError};
use crate::domain::{AppId, ClientSecret, Owner, Scopes, unix_now};
use crate::error::{Error, Result};
use crate::providers::http::{safe_code, safe_description};
use crate::providers::{AuthorizeParams, CodeExchange, Provider};
use crate::store::oauth_apps::AppRow;

/// Longest `return_url` accepted.
const MAX_RETURN_URL_LEN: usize = 2048;

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
        account: Account,
        /// The return URL with `status=connected&provider=…&account_id=…`, if there is one.
        redirect: Option<String>,
    },
    Failed {
        kind: FailureKind,
        code: String,
        description: String,
        /// The return URL with `status=error&error=…`, if there is one and the state was good.
        redirect: Option<String>,
    },
}

/// The app a flow runs with: a BYOK app or the provider's default app from the config.
struct FlowApp {
    app_id: Option<String>,
    client_id: String,
    scopes: Vec<String>,
    secret: FlowSecret,
}

/// Where the app's client secret is. `start` never needs it, so a BYOK secret stays sealed
/// until the callback exchanges a code.
enum FlowSecret {
    Sealed(Arc<AppRow>),
    Config(ClientSecret),
}

/// The query parameters Dravo sets on the return URL.
const RESULT_PARAMS: [&str; 5] = [
    "status",
    "provider",
    "account_id",
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
    /// Checks a `return_url` against `dashboard.allowed_return_urls`.
    fn check_return_url(&self, raw: &str) -> Result<String> {
        if raw.len() > MAX_RETURN_URL_LEN {
            return Err(Error::invalid(format!(
                "return_url must be at most {MAX_RETURN_URL_LEN} characters"
            )));
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
        Ok(url.into())
    }

    /// The app for a flow: the tenant's BYOK app `app_id`, or the provider's default app.
    async fn flow_app(
        &self,
        owner: &Owner,
        provider: Provider,
        app_id: Option<&AppId>,
    ) -> Result<FlowApp> {
        match app_id {
            Some(id) => {
                let row = self.app_row(owner, id).await?;
                if row.provider != provider {
                    return Err(Error::invalid(format!(
                        "OAuth app {id} is for {}, not {provider}",
                        row.provider
                    )));
                }
                Ok(FlowApp {
                    app_id: Some(id.to_string()),
                    client_id: row.client_id.clone(),
                    scopes: row.scopes.clone(),
                    secret: FlowSecret::Sealed(row),
                })
            }
            None => {
                let config = self.0.config.providers.get(provider);
                let (Some(client_id), Some(secret)) = (
                    config.and_then(|c| c.client_id.clone()),
                    config.and_then(|c| c.client_secret.as_ref()),
                ) else {
                    return Err(Error::NoDefaultApp(format!(
                        "no default app is configured for {provider}: set providers.{provider}.client_id and client_secret, or pass oauth_app_id"
                    )));
                };
                use secrecy::ExposeSecret;
                let scopes = match config.and_then(|c| c.scopes.as_ref()) {
                    Some(s) => Scopes::parse(s)?.into_vec(),
                    None => Scopes::defaults(provider).into_vec(),
                };
                let secret = ClientSecret::parse(secret.expose_secret()).map_err(|e| {
                    Error::config(format!("providers.{provider}.client_secret: {e}"))
                })?;
                Ok(FlowApp {
                    app_id: None,
                    client_id,
                    scopes,
                    secret: FlowSecret::Config(secret),
                })
            }
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
        let app = self.flow_app(owner, provider, app_id).await?;
        let key = self.0.keys.state_key();
        let claims = StateClaims::new(
            provider,
            owner.as_str(),
            app.app_id.as_deref(),
            return_url.as_deref(),
            unix_now(),
        );
        let state = state::sign(key, &claims);
        let challenge = provider
            .uses_pkce()
            .then(|| state::pkce_challenge(&state::pkce_verifier(key, &claims.nonce)));
        let redirect_uri = self.redirect_uri(provider);
        Ok(provider.authorize_url(
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
        let bad_state = |why: &str| {
            tracing::warn!(%provider, reason = why, "oauth callback refused");
            CallbackOutcome::Failed {
                kind: FailureKind::BadState,
                code: "invalid_state".into(),
                description: format!(
                    "This sign-in link is not valid: {why}. Start again from your dashboard."
                ),
                redirect: None,
            }
        };
        let Some(raw_state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
            return bad_state("it carries no state");
        };
        let now = unix_now();
        let claims = match state::verify(self.0.keys.state_key(), raw_state, now) {
            Ok(c) => c,
            Err(StateError::Expired) => return bad_state("it has expired"),
            Err(e) => return bad_state(&e.to_string()),
        };
        if claims.provider != provider {
            return bad_state("it was started for another provider");
        }
        let nonce = claims.nonce_hex();
        let expires = claims.expires_at;
        match self
            .0
            .store
            .call(move |c| crate::store::oauth_states::consume(c, &nonce, expires, now))
            .await
        {
            Ok(true) => {}
            Ok(false) => return bad_state("it has already been used"),
            Err(e) => {
                tracing::error!(error = %e, "cannot record the oauth state");
                return CallbackOutcome::Failed {
                    kind: FailureKind::Internal,
                    code: "internal".into(),
                    description: "Dravo could not complete the sign-in.".into(),
                    redirect: None,
                };
            }
        }
        let destination = claims.return_url.clone().or_else(|| {
            self.0
                .config
                .dashboard
                .return_url
                .as_ref()
                .map(|u| u.to_string())
        });
        let fail = |kind: FailureKind, code: &str, description: &str| {
            let code = safe_code(code);
            let description = safe_description(description);
            tracing::warn!(%provider, error = %code, description = %description, "oauth connect failed");
            let redirect = destination.as_deref().and_then(|d| {
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
                kind,
                code,
                description,
                redirect,
            }
        };

        if let Some(error) = params.error.as_deref().filter(|e| !e.is_empty()) {
            let description = params.error_description.as_deref().unwrap_or_default();
            return fail(FailureKind::Denied, error, description);
        }
        let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
            return fail(
                FailureKind::Denied,
                "invalid_request",
                "the provider sent no authorization code",
            );
        };
        let owner = match Owner::parse("tenant", &claims.tenant) {
            Ok(o) => o,
            Err(_) => return bad_state("it names no valid tenant"),
        };
        let app_id = match claims.app_id.as_deref().map(AppId::parse).transpose() {
            Ok(id) => id,
            Err(_) => return bad_state("it names no valid app"),
        };
        let app = match self.flow_app(&owner, provider, app_id.as_ref()).await {
            Ok(app) => app,
            Err(Error::NotFound(_)) => {
                return fail(
                    FailureKind::Internal,
                    "app_not_found",
                    "the OAuth app was deleted during sign-in",
                );
            }
            Err(Error::NoDefaultApp(m)) => {
                return fail(FailureKind::Internal, "no_default_app", &m);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load the app for an oauth callback");
                return fail(
                    FailureKind::Internal,
                    "internal",
                    "Dravo could not complete the sign-in",
                );
            }
        };

        let client_secret = match &app.secret {
            FlowSecret::Config(secret) => secret.clone(),
            FlowSecret::Sealed(row) => match self.open_client_secret(row) {
                Ok(secret) => secret,
                Err(e) => {
                    tracing::error!(error = %e, "cannot open an app's client secret");
                    return fail(
                        FailureKind::Internal,
                        "internal",
                        "Dravo could not complete the sign-in",
                    );
                }
            },
        };
        let verifier = provider
            .uses_pkce()
            .then(|| state::pkce_verifier(self.0.keys.state_key(), &claims.nonce));
        let redirect_uri = self.redirect_uri(provider);
        let endpoints = self.endpoints(provider);
        let exchange = CodeExchange {
            client_id: &app.client_id,
            client_secret: client_secret.expose(),
            redirect_uri: &redirect_uri,
            code: provider.clean_code(code),
            code_verifier: verifier.as_deref(),
        };
        let tokens = match provider
            .exchange_code(self.http(), endpoints, &exchange)
            .await
        {
            Ok(t) => t,
            Err(e) => return fail(FailureKind::Provider, e.code(), &e.description()),
        };
        let identity = match provider.identify(self.http(), endpoints, &tokens).await {
            Ok(i) => i,
            Err(e) => return fail(FailureKind::Provider, e.code(), &e.description()),
        };
        let saved = self
            .save_connected(super::accounts::Connected {
                owner,
                provider,
                oauth_app_id: app.app_id,
                identity,
                tokens,
                requested_scopes: app.scopes,
            })
            .await;
        let account = match saved {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot store a connected account");
                return fail(
                    FailureKind::Internal,
                    "internal",
                    "Dravo could not store the account",
                );
            }
        };
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
}

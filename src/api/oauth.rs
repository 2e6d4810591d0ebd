//! `/v1/oauth/{provider}/start` and `/v1/oauth/{provider}/callback`: the connect flow.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Html;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::client_ip::ClientIp;
use crate::api::error::{LimitedError, RateLimited};
use crate::api::limits::RateLimits;
use crate::api::payload::JsonBody;
use crate::api::{ApiTags, DashboardAuth};
use crate::domain::AppId;
use crate::domain::Provider;
use crate::service::{CallbackOutcome, CallbackParams, Dravo, FailureKind};
use crate::wire::values::{CallbackProvider, CallbackState, Checked};

/// Where to send the user.
#[derive(Debug, Object, serde::Serialize)]
#[oai(example)]
pub struct StartResponse {
    /// The provider's consent screen, with a sealed, single-use `state`.
    pub authorize_url: String,
}

impl Example for StartResponse {
    fn example() -> Self {
        StartResponse {
            authorize_url: "https://www.tiktok.com/v2/auth/authorize/?client_key=…".into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum Started {
    /// The provider's consent screen: redirect the user's browser to `authorize_url`.
    #[oai(status = 200)]
    Ok(JsonBody<StartResponse>),
}

#[derive(ApiResponse)]
pub enum CallbackResponse {
    /// Back to the dashboard: `status=connected&provider=…&account_id=…`, or
    /// `status=error&provider=…&error=…` when the provider refused or the user declined. With
    /// `connect.require_confirmation`: `status=pending&provider=…&connection_id=…&confirm=…`,
    /// to pass to `POST /v1/accounts/{connection_id}/confirm` within 10 minutes.
    #[oai(status = 302)]
    Redirect(#[oai(header = "Location")] String),
    /// Connected, and no return URL is configured: a small page says so.
    #[oai(status = 200)]
    Connected(Html<String>),
    /// The state is missing, forged, expired, replayed or for another provider, the provider
    /// is unknown, or the user declined (without a return URL). Never a redirect for a bad
    /// state.
    #[oai(status = 400)]
    Refused(Html<String>),
    /// Dravo could not finish (without a return URL).
    #[oai(status = 500)]
    Failed(Html<String>),
    /// The provider refused or failed the code exchange (without a return URL).
    #[oai(status = 502)]
    ProviderFailed(Html<String>),
}

/// A small HTML page; `title` and `message` are escaped (`&<>"'`), as they may hold provider text.
fn page(title: &str, message: &str) -> Html<String> {
    use html_escape::encode_quoted_attribute as escape;
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem\">\
         <h1>{t}</h1><p>{m}</p><p>You can close this window.</p></body></html>",
        t = escape(title),
        m = escape(message)
    ))
}

pub struct OAuthApi;

#[OpenApi(tag = "ApiTags::Connect")]
impl OAuthApi {
    /// Start the OAuth flow
    ///
    /// Get the provider authorize URL to redirect the user into the OAuth consent screen.
    /// After consent the provider calls Dravo's callback and the account is connected.
    #[oai(
        path = "/v1/oauth/:provider/start",
        method = "get",
        operation_id = "startOAuth"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        /// The provider: one of the `Provider` schema's values.
        provider: Path<Checked<Provider>>,
        /// Use a specific BYOK OAuth app; omit for the default.
        oauth_app_id: Query<Option<Checked<AppId>>>,
        /// Where the browser goes after the callback; must start with one of
        /// `dashboard.allowed_return_urls`. Required (unless `dashboard.return_url` is set)
        /// when `connect.require_confirmation` is on.
        #[oai(validator(min_length = 1, max_length = 2048))]
        return_url: Query<Option<String>>,
        /// mastodon (required, and only there): the instance to connect on, as a host
        /// (`mastodon.social`), `host:port` or URL. Dravo registers the app there at its first
        /// connect. Only public addresses over https are reached (unless
        /// `providers.mastodon.allow_private_addresses`).
        #[oai(validator(min_length = 1, max_length = 300))]
        instance: Query<Option<String>>,
    ) -> Result<Started, LimitedError> {
        limits.start(&auth.0)?;
        let app_id = oauth_app_id.0.map(|c| c.0);
        let authorize_url = dravo
            .start_connect(
                &auth.0,
                provider.0.0,
                app_id.as_ref(),
                return_url.0.as_deref(),
                instance.0.as_deref(),
            )
            .await?;
        Ok(Started::Ok(JsonBody::of(&StartResponse { authorize_url })))
    }

    /// OAuth callback
    ///
    /// The provider redirects the user's browser here. Needs no auth: the signed state is the
    /// proof. Register `{public_url}/v1/oauth/{provider}/callback` at the provider. Over the
    /// rate limit (per client IP address) the answer is the JSON error, and the state stays
    /// unused: reloading the page after `Retry-After` seconds finishes the connect.
    #[oai(
        path = "/v1/oauth/:provider/callback",
        method = "get",
        operation_id = "oauthCallback"
    )]
    // poem-openapi takes each query parameter as an argument.
    #[allow(clippy::too_many_arguments)]
    async fn callback(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        client: Data<&ClientIp>,
        /// The provider whose consent screen sent the browser here.
        provider: Path<CallbackProvider>,
        /// The authorization code to exchange; absent when the user declined or the provider
        /// failed.
        code: Query<Option<String>>,
        /// The sealed, single-use state Dravo put in the consent URL.
        state: Query<CallbackState>,
        /// The provider's OAuth error code (e.g. `access_denied`) instead of a `code`.
        error: Query<Option<String>>,
        /// The provider's human description of `error`.
        error_description: Query<Option<String>>,
    ) -> Result<CallbackResponse, RateLimited> {
        limits.callback(client.0.0)?;
        // A browser lands here: even a mistyped provider gets a page, not a JSON error.
        let Ok(provider) = provider.0.0.parse::<Provider>() else {
            return Ok(CallbackResponse::Refused(page(
                "Sign-in link not valid",
                "This sign-in link names a provider this server does not know. Check the \
                 redirect URI registered at the provider.",
            )));
        };
        let params = CallbackParams {
            code: code.0,
            state: state.0.0,
            error: error.0,
            error_description: error_description.0,
        };
        Ok(match dravo.finish_connect(provider, params).await {
            CallbackOutcome::Pending { redirect } => CallbackResponse::Redirect(redirect),
            CallbackOutcome::Connected {
                redirect: Some(url),
                ..
            }
            | CallbackOutcome::Failed {
                redirect: Some(url),
                ..
            } => CallbackResponse::Redirect(url),
            CallbackOutcome::Connected { account, .. } => {
                let who = account
                    .username
                    .as_deref()
                    .map(|u| format!("@{u}"))
                    .or(account.display_name.clone())
                    .unwrap_or_else(|| account.provider_account_id.clone());
                CallbackResponse::Connected(page(
                    "Account connected",
                    &format!(
                        "Your {provider} account {who} is connected (account id {}).",
                        account.id
                    ),
                ))
            }
            CallbackOutcome::Failed {
                kind,
                code,
                description,
                ..
            } => {
                let message = if description.is_empty() {
                    format!("The {provider} account was not connected: {code}.")
                } else {
                    format!("The {provider} account was not connected: {code} ({description}).")
                };
                match kind {
                    FailureKind::BadState => {
                        CallbackResponse::Refused(page("Sign-in link not valid", &description))
                    }
                    FailureKind::Denied => {
                        CallbackResponse::Refused(page("Not connected", &message))
                    }
                    FailureKind::Provider => {
                        CallbackResponse::ProviderFailed(page("Not connected", &message))
                    }
                    FailureKind::Internal => {
                        CallbackResponse::Failed(page("Not connected", &message))
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_provider_text() {
        let Html(html) = page("t", "<script>alert(1)</script>");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        let Html(html) = page("<b>&", r#"a&b<c>d"e'f"#);
        assert!(html.contains("<title>&lt;b&gt;&amp;</title>"), "{html}");
        assert!(
            html.contains("<p>a&amp;b&lt;c&gt;d&quot;e&#x27;f</p>"),
            "{html}"
        );
    }
}

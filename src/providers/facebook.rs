//! Facebook Login: no PKCE, the code exchange is a GET, scopes comma-separated. The token it
//! returns is short-lived, so it is traded at once for a long-lived one (about 60 days).

use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{AuthorizeParams, CodeExchange, Endpoints, Identity, TokenSet};

pub(super) const DEFAULT_API_VERSION: &str = "v25.0";

/// (authorize, token, api base) for a Graph API version.
pub(super) fn default_urls(version: &str) -> (String, String, String) {
    (
        format!("https://www.facebook.com/{version}/dialog/oauth"),
        format!("https://graph.facebook.com/{version}/oauth/access_token"),
        "https://graph.facebook.com".to_owned(),
    )
}

pub(super) fn authorize_url(endpoints: &Endpoints, p: &AuthorizeParams<'_>) -> String {
    let scope = p.scopes.join(",");
    super::url_with_query(
        &endpoints.authorize_url,
        &[
            ("client_id", p.client_id),
            ("redirect_uri", p.redirect_uri),
            ("state", p.state),
            ("scope", &scope),
            ("response_type", "code"),
        ],
    )
}

pub(super) async fn exchange_code(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    ex: &CodeExchange<'_>,
) -> Result<TokenSet, ProviderError> {
    let short = http.client().get(endpoints.token_url.clone()).query(&[
        ("client_id", ex.client_id),
        ("redirect_uri", ex.redirect_uri),
        ("client_secret", ex.client_secret),
        ("code", ex.code),
    ]);
    let short = super::parse_token_response(&http.send(short).await?.into_success()?)?;
    let long = http.client().get(endpoints.token_url.clone()).query(&[
        ("grant_type", "fb_exchange_token"),
        ("client_id", ex.client_id),
        ("client_secret", ex.client_secret),
        ("fb_exchange_token", short.access_token.expose_secret()),
    ]);
    super::parse_token_response(&http.send(long).await?.into_success()?)
}

pub(super) async fn identify(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    tokens: &TokenSet,
) -> Result<Identity, ProviderError> {
    let req = http
        .client()
        .get(endpoints.api(&format!("/{}/me", endpoints.api_version)))
        .query(&[("fields", "id,name")])
        .bearer_auth(tokens.access_token.expose_secret());
    let body = http.send(req).await?.into_success()?;
    Ok(Identity {
        provider_account_id: super::required_id(&body, "id")?,
        username: None,
        display_name: string_field(&body, "name"),
    })
}

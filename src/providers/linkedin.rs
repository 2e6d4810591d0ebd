//! LinkedIn OAuth 2.0: no PKCE, client credentials in the form body, scopes space-separated;
//! the member id is the OpenID `sub`.

use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{AuthorizeParams, CodeExchange, Endpoints, Identity, TokenSet};

pub(super) const AUTHORIZE_URL: &str = "https://www.linkedin.com/oauth/v2/authorization";
pub(super) const TOKEN_URL: &str = "https://www.linkedin.com/oauth/v2/accessToken";
pub(super) const API_BASE: &str = "https://api.linkedin.com";

pub(super) fn authorize_url(endpoints: &Endpoints, p: &AuthorizeParams<'_>) -> String {
    let scope = p.scopes.join(" ");
    super::url_with_query(
        &endpoints.authorize_url,
        &[
            ("response_type", "code"),
            ("client_id", p.client_id),
            ("redirect_uri", p.redirect_uri),
            ("state", p.state),
            ("scope", &scope),
        ],
    )
}

pub(super) async fn exchange_code(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    ex: &CodeExchange<'_>,
) -> Result<TokenSet, ProviderError> {
    let req = http.client().post(endpoints.token_url.clone()).form(&[
        ("grant_type", "authorization_code"),
        ("code", ex.code),
        ("redirect_uri", ex.redirect_uri),
        ("client_id", ex.client_id),
        ("client_secret", ex.client_secret),
    ]);
    let body = http.send(req).await?.into_success()?;
    super::parse_token_response(&body)
}

pub(super) async fn identify(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    tokens: &TokenSet,
) -> Result<Identity, ProviderError> {
    let req = http
        .client()
        .get(endpoints.api("/v2/userinfo"))
        .bearer_auth(tokens.access_token.expose_secret());
    let body = http.send(req).await?.into_success()?;
    Ok(Identity {
        provider_account_id: super::required_id(&body, "sub")?,
        username: None,
        display_name: string_field(&body, "name"),
    })
}

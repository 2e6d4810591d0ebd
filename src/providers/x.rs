//! X (Twitter) OAuth 2.0: PKCE S256 is mandatory, the client authenticates with HTTP Basic,
//! scopes are space-separated.

use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{AuthorizeParams, CodeExchange, Endpoints, Identity, TokenSet};

pub(super) const AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";
pub(super) const TOKEN_URL: &str = "https://api.x.com/2/oauth2/token";
pub(super) const API_BASE: &str = "https://api.x.com";

pub(super) fn authorize_url(endpoints: &Endpoints, p: &AuthorizeParams<'_>) -> String {
    let scope = p.scopes.join(" ");
    super::url_with_query(
        &endpoints.authorize_url,
        &[
            ("response_type", "code"),
            ("client_id", p.client_id),
            ("redirect_uri", p.redirect_uri),
            ("scope", &scope),
            ("state", p.state),
            ("code_challenge", p.code_challenge.unwrap_or_default()),
            ("code_challenge_method", "S256"),
        ],
    )
}

pub(super) async fn exchange_code(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    ex: &CodeExchange<'_>,
) -> Result<TokenSet, ProviderError> {
    let verifier = ex.code_verifier.unwrap_or_default();
    let req = http
        .client()
        .post(endpoints.token_url.clone())
        .basic_auth(ex.client_id, Some(ex.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", ex.code),
            ("redirect_uri", ex.redirect_uri),
            ("client_id", ex.client_id),
            ("code_verifier", verifier),
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
        .get(endpoints.api("/2/users/me"))
        .bearer_auth(tokens.access_token.expose_secret());
    let body = http.send(req).await?.into_success()?;
    let data = body
        .get("data")
        .ok_or_else(|| ProviderError::malformed("the identity response has no `data`"))?;
    Ok(Identity {
        provider_account_id: super::required_id(data, "id")?,
        username: string_field(data, "username"),
        display_name: string_field(data, "name"),
    })
}

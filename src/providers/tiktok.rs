//! TikTok Login Kit (web): `client_key` instead of `client_id`, no PKCE, scopes
//! comma-separated; errors can come back with HTTP 200. The granted scopes may be fewer than
//! requested (users can untick them), so the granted list is what is stored.

use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{AuthorizeParams, CodeExchange, Endpoints, Identity, TokenSet};

pub(super) const AUTHORIZE_URL: &str = "https://www.tiktok.com/v2/auth/authorize/";
pub(super) const TOKEN_URL: &str = "https://open.tiktokapis.com/v2/oauth/token/";
pub(super) const API_BASE: &str = "https://open.tiktokapis.com";

pub(super) fn authorize_url(endpoints: &Endpoints, p: &AuthorizeParams<'_>) -> String {
    let scope = p.scopes.join(",");
    super::url_with_query(
        &endpoints.authorize_url,
        &[
            ("client_key", p.client_id),
            ("scope", &scope),
            ("redirect_uri", p.redirect_uri),
            ("state", p.state),
            ("response_type", "code"),
        ],
    )
}

pub(super) async fn exchange_code(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    ex: &CodeExchange<'_>,
) -> Result<TokenSet, ProviderError> {
    let req = http.client().post(endpoints.token_url.clone()).form(&[
        ("client_key", ex.client_id),
        ("client_secret", ex.client_secret),
        ("code", ex.code),
        ("grant_type", "authorization_code"),
        ("redirect_uri", ex.redirect_uri),
    ]);
    let body = http.send(req).await?.into_success()?;
    let mut tokens = super::parse_token_response(&body)?;
    tokens.account_hint = string_field(&body, "open_id");
    Ok(tokens)
}

pub(super) async fn identify(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    tokens: &TokenSet,
) -> Result<Identity, ProviderError> {
    let req = http
        .client()
        .get(endpoints.api("/v2/user/info/"))
        .query(&[("fields", "open_id,avatar_url,display_name,username")])
        .bearer_auth(tokens.access_token.expose_secret());
    let body = http.send(req).await?.into_success()?;
    let user = body
        .get("data")
        .and_then(|d| d.get("user"))
        .ok_or_else(|| ProviderError::malformed("the identity response has no `data.user`"))?;
    let id = string_field(user, "open_id")
        .or_else(|| tokens.account_hint.clone())
        .ok_or_else(|| ProviderError::malformed("the identity response has no `open_id`"))?;
    Ok(Identity {
        provider_account_id: id,
        username: string_field(user, "username"),
        display_name: string_field(user, "display_name"),
    })
}

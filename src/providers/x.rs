//! X (Twitter) OAuth 2.0: PKCE S256 is mandatory, the client authenticates with HTTP Basic,
//! scopes are space-separated.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity, OAuthProvider, Provider,
    Renewal, TokenRefresh, TokenSet,
};

pub(super) struct X;

#[async_trait]
impl OAuthProvider for X {
    fn id(&self) -> Provider {
        Provider::named("x")
    }

    fn display_name(&self) -> &'static str {
        "X"
    }

    fn other_names(&self) -> &'static [&'static str] {
        &["twitter"]
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &[
            "tweet.read",
            "tweet.write",
            "users.read",
            "offline.access",
            "media.write",
        ]
    }

    /// X's OAuth 2.0 scopes.
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "tweet.read",
            "tweet.write",
            "tweet.moderate.write",
            "users.read",
            "users.email",
            "follows.read",
            "follows.write",
            "offline.access",
            "space.read",
            "mute.read",
            "mute.write",
            "like.read",
            "like.write",
            "list.read",
            "list.write",
            "block.read",
            "block.write",
            "bookmark.read",
            "bookmark.write",
            "dm.read",
            "dm.write",
            "media.write",
        ]
    }

    /// `GET /2/users/me` needs both.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["tweet.read", "users.read"]
    }

    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            authorize_url: "https://x.com/i/oauth2/authorize".into(),
            token_url: "https://api.x.com/2/oauth2/token".into(),
            api_base: "https://api.x.com".into(),
        }
    }

    fn uses_pkce(&self) -> bool {
        true
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::Basic
    }

    async fn check_credentials(
        &self,
        _http: &ProviderHttp,
        _endpoints: &Endpoints,
        _client_id: &str,
        _client_secret: &str,
    ) -> CredentialCheck {
        CredentialCheck::Unknown(
            "X has no server-side grant for an OAuth 2.0 client id and secret (its app-only \
             token is issued to the API key and secret, which are other credentials): a wrong \
             secret shows at the first connect"
                .into(),
        )
    }

    /// Refresh tokens are single-use: each refresh returns the next one.
    fn renewal(&self) -> Renewal {
        Renewal::RefreshToken {
            rotates: true,
            dies_unused_after: None,
        }
    }

    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(2 * 3600)
    }

    /// RFC 7009 at `/2/oauth2/revoke`: the refresh token (which ends the grant), then the
    /// access token.
    async fn revoke(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        let url = url::Url::parse(&endpoints.api("/2/oauth2/revoke"))
            .map_err(|e| ProviderError::malformed(format!("bad revoke URL: {e}")))?;
        super::revoke_refresh_then_access(http, url, self.client_auth(), r).await?;
        Ok(true)
    }

    async fn identify(
        &self,
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
}

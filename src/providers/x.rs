//! X (Twitter) OAuth 2.0: PKCE S256 is mandatory, the client authenticates with HTTP Basic,
//! scopes are space-separated.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{ClientAuth, DefaultEndpoints, Endpoints, Identity, OAuthProvider, Provider, TokenSet};

pub(super) struct X;

#[async_trait]
impl OAuthProvider for X {
    fn id(&self) -> Provider {
        Provider::named("x")
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

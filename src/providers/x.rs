//! X (Twitter) OAuth 2.0: PKCE S256 is mandatory, the client authenticates with HTTP Basic,
//! scopes are space-separated.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    AuthorizeParams, ClientAuth, CodeExchange, DefaultEndpoints, Endpoints, Identity,
    OAuthProvider, Provider, TokenSet,
};

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

    fn authorize_url(&self, endpoints: &Endpoints, p: &AuthorizeParams<'_>) -> String {
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

    async fn exchange_code(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        ex: &CodeExchange<'_>,
    ) -> Result<TokenSet, ProviderError> {
        let body = super::token_call(
            http,
            endpoints,
            self.client_auth(),
            ex.client_id,
            ex.client_secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", ex.code),
                ("redirect_uri", ex.redirect_uri),
                ("code_verifier", ex.code_verifier.unwrap_or_default()),
            ],
        )
        .await?;
        super::parse_token_response(&body)
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

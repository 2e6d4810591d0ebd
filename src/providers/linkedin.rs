//! LinkedIn OAuth 2.0: no PKCE, client credentials in the form body, scopes space-separated;
//! the member id is the OpenID `sub`.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    AuthorizeParams, ClientAuth, CodeExchange, DefaultEndpoints, Endpoints, Identity,
    OAuthProvider, Provider, TokenSet,
};

pub(super) struct Linkedin;

#[async_trait]
impl OAuthProvider for Linkedin {
    fn id(&self) -> Provider {
        Provider::named("linkedin")
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["openid", "profile", "w_member_social"]
    }

    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            authorize_url: "https://www.linkedin.com/oauth/v2/authorization".into(),
            token_url: "https://www.linkedin.com/oauth/v2/accessToken".into(),
            api_base: "https://api.linkedin.com".into(),
        }
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::FormBody {
            id_param: "client_id",
        }
    }

    fn authorize_url(&self, endpoints: &Endpoints, p: &AuthorizeParams<'_>) -> String {
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
            .get(endpoints.api("/v2/userinfo"))
            .bearer_auth(tokens.access_token.expose_secret());
        let body = http.send(req).await?.into_success()?;
        Ok(Identity {
            provider_account_id: super::required_id(&body, "sub")?,
            username: None,
            display_name: string_field(&body, "name"),
        })
    }
}

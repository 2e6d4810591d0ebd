//! LinkedIn OAuth 2.0: no PKCE, client credentials in the form body, scopes space-separated;
//! the member id is the OpenID `sub`.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ClientAuth, DefaultEndpoints, Endpoints, Identity, OAuthProvider, Provider, TokenRefresh,
    TokenSet,
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

    /// Documented as 60 days; assume less so a missing `expires_in` is never trusted long.
    fn assumed_lifetime_seconds(&self) -> i64 {
        30 * 86_400
    }

    /// `oauth/v2/revoke`, beside the token endpoint.
    async fn revoke(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        super::revoke_call(
            http,
            endpoints.beside_token_url("revoke"),
            self.client_auth(),
            r.client_id,
            r.client_secret,
            &[("token", r.access_token)],
        )
        .await?;
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

//! TikTok Login Kit (web): `client_key` instead of `client_id`, no PKCE, scopes
//! comma-separated; errors can come back with HTTP 200. The granted scopes may be fewer than
//! requested (users can untick them), so the granted list is what is stored.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity, OAuthProvider, Provider,
    Renewal, TokenRefresh, TokenSet,
};

pub(super) struct Tiktok;

#[async_trait]
impl OAuthProvider for Tiktok {
    fn id(&self) -> Provider {
        Provider::named("tiktok")
    }

    fn display_name(&self) -> &'static str {
        "TikTok"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["user.info.basic", "video.publish", "video.upload"]
    }

    /// The scopes of TikTok's Login Kit and its content, display and research APIs.
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "user.info.basic",
            "user.info.profile",
            "user.info.stats",
            "user.account.type",
            "user.insights",
            "video.list",
            "video.publish",
            "video.upload",
            "video.insights",
            "comment.list",
            "comment.list.manage",
            "artist.certification.read",
            "artist.certification.update",
            "research.adlib.basic",
            "research.data.basic",
            "research.data.vra",
            "portability.all.single",
            "portability.all.ongoing",
            "portability.activity.single",
            "portability.activity.ongoing",
            "portability.directmessages.single",
            "portability.directmessages.ongoing",
            "portability.postsandprofile.single",
            "portability.postsandprofile.ongoing",
        ]
    }

    /// `/v2/user/info/` needs `user.info.basic`.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["user.info.basic"]
    }

    /// Login Kit for Web takes only `https` redirect URIs, loopback hosts included, shorter
    /// than 512 characters.
    fn check_redirect_uri(&self, uri: &url::Url) -> Result<(), String> {
        if uri.scheme() != "https" {
            return Err(
                "TikTok's Login Kit for Web accepts only https redirect URIs, loopback hosts \
                 included: serve Dravo behind https (a tunnel will do for development)"
                    .into(),
            );
        }
        if uri.as_str().len() >= 512 {
            return Err(format!(
                "TikTok accepts redirect URIs shorter than 512 characters; this one has {}",
                uri.as_str().len()
            ));
        }
        Ok(())
    }

    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            authorize_url: "https://www.tiktok.com/v2/auth/authorize/".into(),
            token_url: "https://open.tiktokapis.com/v2/oauth/token/".into(),
            api_base: "https://open.tiktokapis.com".into(),
        }
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::FormBody {
            id_param: "client_key",
        }
    }

    fn client_id_param(&self) -> &'static str {
        "client_key"
    }

    fn scope_separator(&self) -> &'static str {
        ","
    }

    /// TikTok's client-credentials grant at the token endpoint proves a client key and
    /// secret; sandbox and production keys are separate pairs, so it also catches a mix.
    async fn check_credentials(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        client_id: &str,
        client_secret: &str,
    ) -> CredentialCheck {
        super::client_credentials_grant(
            http,
            endpoints,
            self.client_auth(),
            client_id,
            client_secret,
        )
        .await
    }

    /// Each refresh answer carries a new refresh token; the old one stops working.
    fn renewal(&self) -> Renewal {
        Renewal::RefreshToken {
            rotates: true,
            dies_unused_after: None,
        }
    }

    /// TikTok has documented both 24 h and 2 h; the answer's `expires_in` is what counts.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(2 * 3600)
    }

    async fn revoke(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        let url = url::Url::parse(&endpoints.api("/v2/oauth/revoke/"))
            .map_err(|e| ProviderError::malformed(format!("bad revoke URL: {e}")))?;
        super::revoke_call(
            http,
            url,
            self.client_auth(),
            r.client_id,
            r.client_secret,
            &[("token", r.access_token)],
        )
        .await?;
        Ok(true)
    }

    /// The token answer names the account (`open_id`).
    fn read_tokens(&self, body: &Value) -> Result<TokenSet, ProviderError> {
        let mut tokens = super::parse_token_response(body)?;
        tokens.account_hint = string_field(body, "open_id");
        Ok(tokens)
    }

    async fn identify(
        &self,
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
}

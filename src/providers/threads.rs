//! Meta's Threads API: its own app (the Threads app id and secret, not the Facebook app's), no
//! PKCE, scopes comma-separated, a short-lived token traded at once for a long-lived one
//! (`th_exchange_token`), which renews itself (`th_refresh_token`) once a day old and before
//! day 60, like Instagram's. The answer to a renewal may carry the very same token string.
//! User ids can exceed 2^53.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ClientAuth, CodeExchange, CredentialCheck, DefaultEndpoints, Endpoints, Identity,
    OAuthProvider, Provider, Renewal, TokenRefresh, TokenSet,
};

pub(super) struct Threads;

/// Meta's error code when the app id is not a Threads app id (the classic mistake: the
/// Facebook app's id).
const NOT_A_THREADS_APP: &str = "4476002";

/// What a Threads refusal means when it is error `4476002`.
fn name_the_wrong_app(err: ProviderError) -> ProviderError {
    match err {
        ProviderError::Rejected { code, description }
            if code == NOT_A_THREADS_APP
                || description
                    .as_deref()
                    .is_some_and(|d| d.contains(NOT_A_THREADS_APP)) =>
        {
            ProviderError::Rejected {
                code,
                description: Some(format!(
                    "{} (Meta's error {NOT_A_THREADS_APP}: the client_id is not a Threads app id; \
                     use the Threads app id and secret from the app's Threads settings, not the \
                     Facebook app's)",
                    description.unwrap_or_default()
                )),
            }
        }
        other => other,
    }
}

#[async_trait]
impl OAuthProvider for Threads {
    fn id(&self) -> Provider {
        Provider::named("threads")
    }

    fn display_name(&self) -> &'static str {
        "Threads"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["threads_basic", "threads_content_publish"]
    }

    /// The Threads API's permissions.
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "threads_basic",
            "threads_content_publish",
            "threads_manage_replies",
            "threads_read_replies",
            "threads_manage_insights",
            "threads_manage_mentions",
            "threads_keyword_search",
            "threads_delete",
            "threads_location_tagging",
            "threads_profile_discovery",
        ]
    }

    /// `/me` needs `threads_basic`.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["threads_basic"]
    }

    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            // Meta also serves threads.com; the host is configurable like every endpoint.
            authorize_url: "https://threads.net/oauth/authorize".into(),
            token_url: "https://graph.threads.net/oauth/access_token".into(),
            api_base: "https://graph.threads.net".into(),
        }
    }

    fn scope_separator(&self) -> &'static str {
        ","
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::FormBody {
            id_param: "client_id",
        }
    }

    async fn exchange_code(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        ex: &CodeExchange<'_>,
    ) -> Result<TokenSet, ProviderError> {
        let short = super::token_call(
            http,
            endpoints,
            self.client_auth(),
            ex.client_id,
            ex.client_secret,
            &[
                ("grant_type", "authorization_code"),
                ("redirect_uri", ex.redirect_uri),
                ("code", ex.code),
            ],
        )
        .await
        .map_err(name_the_wrong_app)?;
        let short_token = string_field(&short, "access_token")
            .ok_or_else(|| ProviderError::malformed("the token response has no access_token"))?;
        // The long-lived exchange is a Graph call at the API host, not a token-endpoint call.
        let mut tokens = super::meta_long_lived(
            http,
            endpoints,
            "th_exchange_token",
            ex.client_secret,
            &short_token,
        )
        .await
        .map_err(name_the_wrong_app)?;
        tokens.account_hint = string_field(&short, "user_id");
        Ok(tokens)
    }

    async fn check_credentials(
        &self,
        _http: &ProviderHttp,
        _endpoints: &Endpoints,
        _client_id: &str,
        _client_secret: &str,
    ) -> CredentialCheck {
        CredentialCheck::Unknown(format!(
            "the Threads API has no client-credentials grant: a wrong app id or secret shows at \
             the first connect (a Facebook app's id there is Meta's error {NOT_A_THREADS_APP})"
        ))
    }

    /// The long-lived token is renewed by itself, once it is a day old.
    fn renewal(&self) -> Renewal {
        Renewal::AccessToken {
            min_age_seconds: 86_400,
        }
    }

    /// Long-lived tokens last 60 days; assume fewer when the answer omits it.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(50 * 86_400)
    }

    /// `GET /refresh_access_token?grant_type=th_refresh_token&access_token=…` (no secret).
    async fn refresh_tokens(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<TokenSet, ProviderError> {
        super::meta_self_refresh(http, endpoints, "th_refresh_token", r.access_token).await
    }

    async fn identify(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError> {
        let req = http.client().get(endpoints.api("/v1.0/me")).query(&[
            ("fields", "id,username,name"),
            ("access_token", tokens.access_token.expose_secret()),
        ]);
        let body = http.send(req).await?.into_success()?;
        let id = string_field(&body, "id")
            .or_else(|| tokens.account_hint.clone())
            .ok_or_else(|| ProviderError::malformed("the identity response has no `id`"))?;
        Ok(Identity {
            provider_account_id: id,
            username: string_field(&body, "username"),
            display_name: string_field(&body, "name"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_4476002_names_the_wrong_app() {
        let named = name_the_wrong_app(ProviderError::Rejected {
            code: "OAuthException".into(),
            description: Some("Invalid platform app (code 4476002)".into()),
        });
        let text = named.to_string();
        assert!(text.contains("not a Threads app id"), "{text}");
        let other = name_the_wrong_app(ProviderError::Rejected {
            code: "invalid_grant".into(),
            description: Some("code used".into()),
        });
        assert!(!other.to_string().contains("Threads app id"));
    }
}

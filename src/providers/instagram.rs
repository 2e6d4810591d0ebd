//! Instagram API with Instagram Login: no PKCE, scopes comma-separated, the code may arrive
//! with `#_` appended, the token answer may be wrapped in `{"data": [...]}`, and the
//! short-lived token is traded at once for a long-lived one. User ids can exceed 2^53.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ClientAuth, CodeExchange, CredentialCheck, DefaultEndpoints, Endpoints, Identity,
    OAuthProvider, Provider, Renewal, TokenRefresh, TokenSet,
};

pub(super) struct Instagram;

/// `{"data": [{…}]}` or `{…}`.
fn unwrap_data(body: Value) -> Value {
    match body {
        Value::Object(mut map) if !map.contains_key("access_token") => match map.remove("data") {
            Some(Value::Array(mut items)) if !items.is_empty() => items.swap_remove(0),
            Some(other) => other,
            None => Value::Object(map),
        },
        other => other,
    }
}

fn permissions(body: &Value) -> Option<Vec<String>> {
    match body.get("permissions")? {
        Value::String(s) => Some(crate::domain::split_list(s)),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

#[async_trait]
impl OAuthProvider for Instagram {
    fn id(&self) -> Provider {
        Provider::named("instagram")
    }

    fn display_name(&self) -> &'static str {
        "Instagram"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &[
            "instagram_business_basic",
            "instagram_business_content_publish",
        ]
    }

    /// The scopes of the Instagram API with Instagram Login (the `instagram_business_*`
    /// names; the Facebook Login ones such as `instagram_basic` do not apply here).
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "instagram_business_basic",
            "instagram_business_content_publish",
            "instagram_business_manage_comments",
            "instagram_business_manage_messages",
            "instagram_business_manage_insights",
        ]
    }

    /// `/me` needs `instagram_business_basic`.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["instagram_business_basic"]
    }

    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            authorize_url: "https://www.instagram.com/oauth/authorize".into(),
            token_url: "https://api.instagram.com/oauth/access_token".into(),
            api_base: "https://graph.instagram.com".into(),
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

    fn clean_code<'a>(&self, code: &'a str) -> &'a str {
        code.strip_suffix("#_").unwrap_or(code)
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
        .await?;
        let short = unwrap_data(short);
        let short_token = string_field(&short, "access_token")
            .ok_or_else(|| ProviderError::malformed("the token response has no access_token"))?;
        // The long-lived exchange is a Graph call, not a token-endpoint call.
        let mut tokens = super::meta_long_lived(
            http,
            endpoints,
            "ig_exchange_token",
            ex.client_secret,
            &short_token,
        )
        .await?;
        tokens.granted_scopes = permissions(&short);
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
        CredentialCheck::Unknown(
            "Instagram Login has no client-credentials grant (the Instagram app id and secret \
             are not the Facebook app's): a wrong secret shows at the first connect"
                .into(),
        )
    }

    /// The long-lived token is refreshed by itself, once it is a day old.
    fn renewal(&self) -> Renewal {
        Renewal::AccessToken {
            min_age_seconds: 86_400,
        }
    }

    /// Long-lived tokens last 60 days; assume fewer when the answer omits it.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(50 * 86_400)
    }

    /// `GET /refresh_access_token?grant_type=ig_refresh_token&access_token=…` (no secret).
    async fn refresh_tokens(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<TokenSet, ProviderError> {
        super::meta_self_refresh(http, endpoints, "ig_refresh_token", r.access_token).await
    }

    async fn identify(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError> {
        let req = http.client().get(endpoints.api("/me")).query(&[
            ("fields", "user_id,username,name"),
            ("access_token", tokens.access_token.expose_secret()),
        ]);
        let body = http.send(req).await?.into_success()?;
        let id = string_field(&body, "user_id")
            .or_else(|| tokens.account_hint.clone())
            .or_else(|| string_field(&body, "id"))
            .ok_or_else(|| ProviderError::malformed("the identity response has no `user_id`"))?;
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
    use serde_json::json;

    #[test]
    fn strips_hash_suffix() {
        assert_eq!(Instagram.clean_code("abc#_"), "abc");
        assert_eq!(Instagram.clean_code("abc"), "abc");
    }

    #[test]
    fn unwraps_data_wrapper() {
        let wrapped = json!({"data": [{"access_token": "t", "user_id": 1}]});
        assert_eq!(unwrap_data(wrapped)["access_token"], "t");
        let plain = json!({"access_token": "t"});
        assert_eq!(unwrap_data(plain)["access_token"], "t");
    }
}

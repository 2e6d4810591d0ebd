//! Reddit OAuth 2: no PKCE, scopes space-separated, `duration=permanent` on the consent URL
//! (without it there is no refresh token), the client authenticated with HTTP Basic. Access
//! tokens live an hour; the refresh token neither expires nor rotates. The API lives at
//! `oauth.reddit.com`, the token and revoke endpoints side by side at `www.reddit.com`.
//! Reddit throttles generic user agents: every call carries a descriptive one (the app's own,
//! else `default_user_agent`).

use async_trait::async_trait;
use secrecy::ExposeSecret;

use serde_json::Value;

use super::http::{ProviderError, ProviderHttp, ProviderResponse, string_field};
use super::{
    ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity, OAuthProvider, Provider,
    TokenRefresh, TokenSet,
};

pub(super) struct Reddit;

/// A token-endpoint answer. Reddit refuses the client's Basic credentials with HTTP 401 and
/// `{"message": "Unauthorized", "error": 401}`, which names no OAuth code: it is the app's
/// credentials (`invalid_client`), not the grant. Other refusals are OAuth's
/// `{"error": "invalid_grant"}`, sometimes with HTTP 200, read as everywhere.
fn token_answer(resp: ProviderResponse) -> Result<Value, ProviderError> {
    if resp.status == 401 && resp.body.get("error").is_some_and(Value::is_number) {
        return Err(ProviderError::Rejected {
            code: "invalid_client".into(),
            description: resp
                .body
                .get("message")
                .and_then(Value::as_str)
                .map(super::http::safe_description),
        });
    }
    resp.into_success()
}

#[async_trait]
impl OAuthProvider for Reddit {
    fn id(&self) -> Provider {
        Provider::named("reddit")
    }

    fn display_name(&self) -> &'static str {
        "Reddit"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["identity", "submit", "read"]
    }

    /// Reddit's OAuth scopes (`GET /api/v1/scopes`).
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "account",
            "creddits",
            "edit",
            "flair",
            "history",
            "identity",
            "livemanage",
            "modconfig",
            "modcontributors",
            "modflair",
            "modlog",
            "modmail",
            "modnote",
            "modothers",
            "modposts",
            "modself",
            "modwiki",
            "mysubreddits",
            "privatemessages",
            "read",
            "report",
            "save",
            "structuredstyles",
            "submit",
            "subscribe",
            "vote",
            "wikiedit",
            "wikiread",
        ]
    }

    /// `GET /api/v1/me` needs `identity`.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["identity"]
    }

    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            authorize_url: "https://www.reddit.com/api/v1/authorize".into(),
            token_url: "https://www.reddit.com/api/v1/access_token".into(),
            api_base: "https://oauth.reddit.com".into(),
        }
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::Basic
    }

    fn token_answer(&self, resp: ProviderResponse) -> Result<Value, ProviderError> {
        token_answer(resp)
    }

    /// Reddit's format, `<platform>:<app id>:<version> (by …)`, naming Dravo: the generic
    /// `dravo/<version>` would be throttled.
    fn default_user_agent(&self) -> Option<String> {
        Some(format!(
            "web:dravo:{} (by Dravo, self-hosted)",
            env!("CARGO_PKG_VERSION")
        ))
    }

    /// `duration=permanent`, or no refresh token comes.
    fn extra_authorize_params(&self) -> &'static [(&'static str, &'static str)] {
        &[("duration", "permanent")]
    }

    /// A confidential (web) app may take an app-only token: it proves the id and secret.
    async fn check_credentials(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        client_id: &str,
        client_secret: &str,
    ) -> CredentialCheck {
        let answer = super::token_call_reading(
            http,
            endpoints,
            self.client_auth(),
            client_id,
            client_secret,
            &[("grant_type", "client_credentials")],
            token_answer,
        )
        .await;
        super::credentials_verdict(endpoints, answer)
    }

    /// Documented as an hour.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(3600)
    }

    /// `revoke_token`, beside the token endpoint: the refresh token (which ends the grant),
    /// then the access token.
    async fn revoke(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        let url = endpoints.beside_token_url("revoke_token");
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
            .get(endpoints.api("/api/v1/me"))
            .bearer_auth(tokens.access_token.expose_secret());
        let body = http.send(req).await?.into_success()?;
        let name = string_field(&body, "name");
        // The profile's title when the user gave one, else the username.
        let title = body.get("subreddit").and_then(|s| string_field(s, "title"));
        Ok(Identity {
            provider_account_id: super::required_id(&body, "id")?,
            display_name: title.or_else(|| name.clone()),
            username: name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::AuthorizeParams;

    #[test]
    fn the_consent_url_asks_for_a_permanent_grant_with_space_separated_scopes() {
        let endpoints = (&Reddit as &dyn OAuthProvider).endpoints(&Default::default());
        let scopes = vec!["identity".to_owned(), "submit".to_owned()];
        let url = Reddit.authorize_url(
            &endpoints,
            &AuthorizeParams {
                client_id: "cid",
                redirect_uri: "https://d.example/cb",
                scopes: &scopes,
                state: "st",
                code_challenge: None,
            },
        );
        assert_eq!(
            url,
            "https://www.reddit.com/api/v1/authorize?response_type=code&client_id=cid\
             &redirect_uri=https%3A%2F%2Fd.example%2Fcb&scope=identity+submit&state=st\
             &duration=permanent"
        );
        assert_eq!(
            endpoints.beside_token_url("revoke_token").as_str(),
            "https://www.reddit.com/api/v1/revoke_token"
        );
    }

    #[test]
    fn a_401_with_reddits_numeric_error_is_the_apps_credentials() {
        use serde_json::json;
        let answer = |status, body| {
            token_answer(ProviderResponse {
                status,
                body,
                retry_after: None,
            })
        };
        assert_eq!(
            answer(401, json!({"message": "Unauthorized", "error": 401})),
            Err(ProviderError::Rejected {
                code: "invalid_client".into(),
                description: Some("Unauthorized".into()),
            })
        );
        assert_eq!(
            answer(200, json!({"error": "invalid_grant"})),
            Err(ProviderError::Rejected {
                code: "invalid_grant".into(),
                description: None,
            })
        );
    }

    #[test]
    fn the_default_user_agent_names_dravo_and_its_version_in_reddits_format() {
        let ua = Reddit.default_user_agent().unwrap();
        assert_eq!(
            ua,
            format!(
                "web:dravo:{} (by Dravo, self-hosted)",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(crate::domain::UserAgent::parse(&ua).is_ok());
    }
}

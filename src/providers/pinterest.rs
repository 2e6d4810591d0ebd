//! Pinterest API v5: no PKCE relied on (its support is uncertain), scopes comma-separated, the
//! client authenticated with HTTP Basic at `/v5/oauth/token`. Refresh is continuous: every
//! refresh answers a new refresh token that replaces the old one, so it is a rotating token
//! (refreshes of one account must not overlap). Access tokens live 30 days. No revoke call is
//! documented. Errors come as `{code, message}` besides the OAuth shape.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::http::{ProviderError, ProviderHttp, ProviderResponse, string_field};
use super::{
    ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity, OAuthProvider, Provider,
    Renewal, TokenSet,
};

pub(super) struct Pinterest;

/// A token-endpoint answer, with Pinterest's own error shape (`{"code": 1, "message": …}`)
/// read too: a 401 is the app's credentials, any other refusal the grant.
fn token_answer(resp: ProviderResponse) -> Result<Value, ProviderError> {
    let pinterest_error = resp
        .body
        .get("message")
        .and_then(Value::as_str)
        .filter(|_| {
            resp.body.get("code").is_some_and(Value::is_number)
                && !(200..300).contains(&resp.status)
        });
    if let Some(message) = pinterest_error {
        let code = if resp.status == 401 {
            "invalid_client"
        } else {
            "invalid_grant"
        };
        return Err(ProviderError::Rejected {
            code: code.into(),
            description: Some(super::http::safe_description(message)),
        });
    }
    resp.into_success()
}

/// Who the `/v5/user_account` answer names. Its `id` is the account id; an answer without
/// one (seen in the wild, uncertain) falls back to the `username`, which Pinterest keeps
/// unique too.
fn identity_from(body: &Value) -> Result<Identity, ProviderError> {
    let username = string_field(body, "username");
    let id = match string_field(body, "id") {
        Some(id) => id,
        None => {
            let fields: Vec<&str> = body
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            tracing::info!(
                ?fields,
                "pinterest's user_account has no `id`: the username is the account id"
            );
            username.clone().ok_or_else(|| {
                ProviderError::malformed("the identity response has neither `id` nor `username`")
            })?
        }
    };
    Ok(Identity {
        provider_account_id: id,
        display_name: string_field(body, "business_name"),
        username,
    })
}

#[async_trait]
impl OAuthProvider for Pinterest {
    fn id(&self) -> Provider {
        Provider::named("pinterest")
    }

    fn display_name(&self) -> &'static str {
        "Pinterest"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &[
            "user_accounts:read",
            "boards:read",
            "pins:read",
            "pins:write",
        ]
    }

    /// Pinterest API v5's scopes.
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "ads:read",
            "ads:write",
            "billing:read",
            "billing:write",
            "biz_access:read",
            "biz_access:write",
            "boards:read",
            "boards:read_secret",
            "boards:write",
            "boards:write_secret",
            "catalogs:read",
            "catalogs:write",
            "pins:read",
            "pins:read_secret",
            "pins:write",
            "pins:write_secret",
            "user_accounts:read",
            "user_accounts:write",
        ]
    }

    /// `GET /v5/user_account` needs `user_accounts:read`.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["user_accounts:read"]
    }

    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            authorize_url: "https://www.pinterest.com/oauth/".into(),
            token_url: "https://api.pinterest.com/v5/oauth/token".into(),
            api_base: "https://api.pinterest.com".into(),
        }
    }

    fn scope_separator(&self) -> &'static str {
        ","
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::Basic
    }

    fn token_answer(&self, resp: ProviderResponse) -> Result<Value, ProviderError> {
        token_answer(resp)
    }

    async fn check_credentials(
        &self,
        _http: &ProviderHttp,
        _endpoints: &Endpoints,
        _client_id: &str,
        _client_secret: &str,
    ) -> CredentialCheck {
        CredentialCheck::Unknown(
            "Pinterest grants no client-credentials token to a consumer app: a wrong app id or \
             secret shows at the first connect"
                .into(),
        )
    }

    /// Continuous refresh: each refresh answers a new refresh token and the old one stops.
    fn renewal(&self) -> Renewal {
        Renewal::RefreshToken {
            rotates: true,
            dies_unused_after: None,
        }
    }

    /// Documented as 30 days; assume a little less when an answer omits it.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(25 * 86_400)
    }

    async fn identify(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError> {
        let req = http
            .client()
            .get(endpoints.api("/v5/user_account"))
            .bearer_auth(tokens.access_token.expose_secret());
        identity_from(&http.send(req).await?.into_success()?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_account_id_is_the_id_else_the_username() {
        let full = identity_from(&json!({"id": "549755885175", "username": "maker",
            "business_name": "Maker Co"}))
        .unwrap();
        assert_eq!(full.provider_account_id, "549755885175");
        assert_eq!(full.username.as_deref(), Some("maker"));
        assert_eq!(full.display_name.as_deref(), Some("Maker Co"));
        let bare = identity_from(&json!({"username": "maker", "account_type": "PINNER"})).unwrap();
        assert_eq!(bare.provider_account_id, "maker");
        assert_eq!(bare.username.as_deref(), Some("maker"));
        assert!(identity_from(&json!({"account_type": "PINNER"})).is_err());
    }

    #[test]
    fn pinterest_errors_name_the_app_on_401_and_the_grant_otherwise() {
        let answer = |status, body| {
            token_answer(ProviderResponse {
                status,
                body,
                retry_after: None,
            })
        };
        assert_eq!(
            answer(401, json!({"code": 2, "message": "Authentication failed."})),
            Err(ProviderError::Rejected {
                code: "invalid_client".into(),
                description: Some("Authentication failed.".into()),
            })
        );
        assert_eq!(
            answer(400, json!({"code": 1, "message": "Invalid refresh token."})),
            Err(ProviderError::Rejected {
                code: "invalid_grant".into(),
                description: Some("Invalid refresh token.".into()),
            })
        );
        // The OAuth shape and successes read as everywhere else.
        assert_eq!(
            answer(400, json!({"error": "invalid_grant"})),
            Err(ProviderError::Rejected {
                code: "invalid_grant".into(),
                description: None,
            })
        );
        assert_eq!(
            answer(200, json!({"access_token": "a"})),
            Ok(json!({"access_token": "a"}))
        );
    }
}

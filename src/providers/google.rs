//! What YouTube and Google Business Profile share: Google's OAuth 2.0. The consent asks for
//! offline access on every connect (`access_type=offline`, and `prompt=consent`, without which
//! Google issues no refresh token on a re-consent), with PKCE S256 and the client credentials
//! in the form body. Refresh tokens do not rotate; one unused for six months dies, and one
//! issued to an app in "Testing" dies after 7 days (Google then sends
//! `refresh_token_expires_in`, which the lifecycle honours as the deadline). The person is read
//! from OpenID Connect's userinfo.
//!
//! Google serves each API from a host of its own. When `api_base` is configured (a proxy, a
//! test), every one of them is reached under it by path instead: `/v1/userinfo`,
//! `/youtube/v3/channels`, `/v1/accounts`, `/v1/accounts/{id}/locations`.

use secrecy::ExposeSecret;
use serde_json::Value;

use super::http::{ProviderError, ProviderHttp, ProviderResponse, string_field};
use super::{
    ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity, Renewal, TokenRefresh,
    TokenSet,
};

/// The `OAuthProvider` methods every Google provider answers alike: Google's endpoints and
/// consent parameters, PKCE, the credentials in the body, the non-rotating refresh token that
/// dies unused, one-hour tokens, and Google's long scope names in a grant. Expanded inside each
/// provider's `impl OAuthProvider` (the async ones delegate to this file's functions there).
macro_rules! google_oauth {
    () => {
        fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
            google::default_endpoints()
        }

        fn extra_authorize_params(&self) -> &'static [(&'static str, &'static str)] {
            google::EXTRA_AUTHORIZE_PARAMS
        }

        fn uses_pkce(&self) -> bool {
            true
        }

        fn client_auth(&self) -> ClientAuth {
            google::CLIENT_AUTH
        }

        fn renewal(&self) -> Renewal {
            google::RENEWAL
        }

        fn assumed_lifetime_seconds(&self) -> Option<i64> {
            Some(google::ACCESS_LIFETIME_SECONDS)
        }

        fn missing_scopes(&self, requested: &[String], granted: &[String]) -> Vec<String> {
            google::missing_scopes(requested, granted)
        }
    };
}
pub(super) use google_oauth;

/// The `api_base` of Google's own hosts; any other value routes every API under it.
const DEFAULT_API_BASE: &str = "https://www.googleapis.com";

/// Google's consent-screen parameters beyond OAuth's.
pub(super) const EXTRA_AUTHORIZE_PARAMS: &[(&str, &str)] = &[
    ("access_type", "offline"),
    ("prompt", "consent"),
    ("include_granted_scopes", "true"),
];

/// A refresh token unused for six months stops working.
pub(super) const RENEWAL: Renewal = Renewal::RefreshToken {
    rotates: false,
    dies_unused_after: Some(183 * 86_400),
};

/// Google's access tokens last an hour.
pub(super) const ACCESS_LIFETIME_SECONDS: i64 = 3600;

/// The client id and secret go in the form body.
pub(super) const CLIENT_AUTH: ClientAuth = ClientAuth::FormBody {
    id_param: "client_id",
};

pub(super) fn default_endpoints() -> DefaultEndpoints {
    DefaultEndpoints {
        authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
        token_url: "https://oauth2.googleapis.com/token".into(),
        api_base: DEFAULT_API_BASE.into(),
    }
}

/// The URL of `path` on Google's API `host`, or under the configured `api_base`.
pub(super) fn api_url(endpoints: &Endpoints, host: &str, path: &str) -> String {
    if endpoints.api_base.as_str().trim_end_matches('/') == DEFAULT_API_BASE {
        format!("https://{host}{path}")
    } else {
        endpoints.api(path)
    }
}

/// The requested scopes missing from the grant. Google answers `email` and `profile` by their
/// long names (`…/auth/userinfo.email`), so either name counts as granted.
pub(super) fn missing_scopes(requested: &[String], granted: &[String]) -> Vec<String> {
    let long_name = |scope: &str| match scope {
        "email" => Some("https://www.googleapis.com/auth/userinfo.email"),
        "profile" => Some("https://www.googleapis.com/auth/userinfo.profile"),
        _ => None,
    };
    requested
        .iter()
        .filter(|scope| {
            !granted.contains(scope)
                && !long_name(scope).is_some_and(|long| granted.iter().any(|g| g == long))
        })
        .cloned()
        .collect()
}

/// The person behind the token: `sub` from userinfo, the e-mail address as the username (when
/// the grant includes `email`), the name.
pub(super) async fn userinfo(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    tokens: &TokenSet,
) -> Result<Identity, ProviderError> {
    let req = http
        .client()
        .get(api_url(
            endpoints,
            "openidconnect.googleapis.com",
            "/v1/userinfo",
        ))
        .bearer_auth(tokens.access_token.expose_secret());
    let body = http.send(req).await?.into_success()?;
    Ok(Identity {
        provider_account_id: super::required_id(&body, "sub")?,
        username: string_field(&body, "email"),
        display_name: string_field(&body, "name"),
    })
}

/// `POST {token host}/revoke` with the refresh token (which ends the whole grant), else the
/// access token. Google's revoke takes no client authentication.
pub(super) async fn revoke(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    r: &TokenRefresh<'_>,
) -> Result<bool, ProviderError> {
    let token = r.refresh_token.unwrap_or(r.access_token);
    let req = http
        .client()
        .post(endpoints.beside_token_url("revoke"))
        .form(&[("token", token)]);
    http.send(req).await?.into_success()?;
    Ok(true)
}

/// Google has no client-credentials grant, but its token endpoint checks the client before
/// the code: exchanging a made-up code answers `invalid_client` for a wrong id or secret and
/// `invalid_grant` for good ones. Nothing is granted either way.
pub(super) async fn probe_credentials(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    client_id: &str,
    client_secret: &str,
) -> CredentialCheck {
    let host = endpoints.token_url.host_str().unwrap_or("Google");
    let answer = super::token_call(
        http,
        endpoints,
        CLIENT_AUTH,
        client_id,
        client_secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", "dravo-credentials-check"),
            ("redirect_uri", "https://localhost/dravo-credentials-check"),
        ],
    )
    .await;
    match answer {
        Err(ProviderError::Rejected { code, .. }) if code == "invalid_grant" => {
            CredentialCheck::Proven
        }
        Err(ProviderError::Rejected { code, description })
            if code == "invalid_client" || code == "unauthorized_client" =>
        {
            CredentialCheck::Refused(match description {
                Some(d) if !d.is_empty() => format!("{code}: {d}"),
                _ => code,
            })
        }
        Err(other) => CredentialCheck::Unknown(format!(
            "could not tell from {host}'s answer to a made-up code: {}",
            other.summary()
        )),
        Ok(_) => CredentialCheck::Unknown(format!(
            "{host} accepted a made-up code, so its answer says nothing about the credentials"
        )),
    }
}

/// A Google API's answer, with an app-level refusal told apart: an API Google has not approved
/// the project for (Business Profile's quota of 0 until its access request is granted), or one
/// not enabled in the project, answers 403 or 429 with `RESOURCE_EXHAUSTED`, quota or
/// "not been used" text. That is the app's problem, never the account's.
pub(super) fn api_answer(resp: ProviderResponse, api: &str) -> Result<Value, ProviderError> {
    if matches!(resp.status, 403 | 429)
        && let Some((code, description)) = super::http::oauth_error(&resp.body)
    {
        let text = description
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let gated = code == "resource_exhausted"
            || text.contains("quota")
            || text.contains("has not been used in project")
            || text.contains("is disabled");
        if gated {
            return Err(ProviderError::AppRefused {
                code,
                description: Some(format!(
                    "{} ({api} answers an app with a quota of 0 until Google approves the project's access request, or while the API is not enabled in the project)",
                    description.unwrap_or_default()
                )),
            });
        }
    }
    if resp.status == 429 {
        return Err(ProviderError::RateLimited {
            retry_after: resp.retry_after,
        });
    }
    resp.into_success()
}

/// Follows Google's `nextPageToken` through every page of a list at `url`, calling `each` with
/// every page's body; at most `MAX_LIST_PAGES` pages.
pub(super) async fn each_page(
    http: &ProviderHttp,
    url: &str,
    query: &[(&str, &str)],
    access_token: &str,
    api: &str,
    mut each: impl FnMut(&Value) -> Result<(), ProviderError>,
) -> Result<(), ProviderError> {
    let mut page_token: Option<String> = None;
    for _ in 0..super::MAX_LIST_PAGES {
        let mut req = http
            .client()
            .get(url)
            .query(query)
            .bearer_auth(access_token);
        if let Some(token) = &page_token {
            req = req.query(&[("pageToken", token)]);
        }
        let body = api_answer(http.send_any(req).await?, api)?;
        each(&body)?;
        page_token = match body["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => Some(next.to_owned()),
            _ => return Ok(()),
        };
    }
    Err(ProviderError::malformed(format!(
        "{api}'s list goes on past {} pages",
        super::MAX_LIST_PAGES
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn email_and_profile_are_granted_under_their_long_names() {
        let requested = strings(&[
            "openid",
            "email",
            "profile",
            "https://www.googleapis.com/auth/youtube.upload",
        ]);
        let granted = strings(&[
            "openid",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/userinfo.profile",
        ]);
        assert_eq!(
            missing_scopes(&requested, &granted),
            strings(&["https://www.googleapis.com/auth/youtube.upload"])
        );
        assert!(
            missing_scopes(&requested[..3], &strings(&["openid", "email", "profile"])).is_empty()
        );
    }

    #[test]
    fn the_approval_gate_blames_the_app_and_a_plain_429_is_a_rate_limit() {
        let answer = |status, body| ProviderResponse {
            status,
            body,
            retry_after: Some(7),
        };
        let gate = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'"}});
        let Err(ProviderError::AppRefused { code, description }) =
            api_answer(answer(429, gate), "Business Profile")
        else {
            panic!("a quota answer is the app's");
        };
        assert_eq!(code, "resource_exhausted");
        assert!(description.unwrap().contains("Quota exceeded"));
        let disabled = json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": "My Business Account Management API has not been used in project 1 before or it is disabled."}});
        assert!(matches!(
            api_answer(answer(403, disabled), "Business Profile"),
            Err(ProviderError::AppRefused { .. })
        ));
        let denied = json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": "The caller does not have permission"}});
        assert!(matches!(
            api_answer(answer(403, denied), "Business Profile"),
            Err(ProviderError::Rejected { .. })
        ));
        assert_eq!(
            api_answer(answer(429, Value::Null), "Business Profile"),
            Err(ProviderError::RateLimited {
                retry_after: Some(7)
            })
        );
    }
}

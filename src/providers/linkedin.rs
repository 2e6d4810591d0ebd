//! LinkedIn OAuth 2.0: no PKCE, client credentials in the form body, scopes space-separated;
//! the member id is the OpenID `sub`.

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ChildAccount, ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity,
    MAX_LIST_PAGES, OAuthProvider, Provider, TokenRefresh, TokenSet,
};
use crate::domain::AccountKind;

pub(super) struct Linkedin;

/// Scopes that let a member act for the organizations they administer; with any of them
/// granted, Dravo lists those organizations.
const ORGANIZATION_SCOPES: [&str; 3] = [
    "w_organization_social",
    "r_organization_admin",
    "rw_organization_admin",
];

/// The versioned REST API (`/rest/…`) wants its version in a header.
const REST_VERSION: &str = "202510";

const ORGANIZATION_URN: &str = "urn:li:organization:";

/// A GET on LinkedIn's versioned REST API.
fn rest_get(http: &ProviderHttp, url: &str, access_token: &str) -> reqwest::RequestBuilder {
    http.client()
        .get(url)
        .header("LinkedIn-Version", REST_VERSION)
        .header("X-Restli-Protocol-Version", "2.0.0")
        .bearer_auth(access_token)
}

#[async_trait]
impl OAuthProvider for Linkedin {
    fn id(&self) -> Provider {
        Provider::named("linkedin")
    }

    fn display_name(&self) -> &'static str {
        "LinkedIn"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["openid", "profile", "w_member_social"]
    }

    /// The member and organization scopes of LinkedIn's self-serve and partner products.
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "openid",
            "profile",
            "email",
            "w_member_social",
            "w_member_social_feed",
            "r_member_social",
            "r_member_social_feed",
            "r_basicprofile",
            "r_liteprofile",
            "r_emailaddress",
            "r_1st_connections_size",
            "r_member_postAnalytics",
            "r_member_profileAnalytics",
            "w_organization_social",
            "w_organization_social_feed",
            "r_organization_social",
            "r_organization_social_feed",
            "rw_organization_admin",
            "r_organization_admin",
            "r_organization_followers",
            "r_ads",
            "rw_ads",
            "r_ads_reporting",
            "r_events",
            "rw_events",
            "rw_conversions",
            "r_marketing_leadgen_automation",
        ]
    }

    /// `/v2/userinfo` needs `openid`; the member's name comes with `profile`.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["openid", "profile"]
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

    async fn check_credentials(
        &self,
        _http: &ProviderHttp,
        _endpoints: &Endpoints,
        _client_id: &str,
        _client_secret: &str,
    ) -> CredentialCheck {
        CredentialCheck::Unknown(
            "LinkedIn grants client credentials only to apps it approved for them, so its \
             refusal would not mean a wrong secret; nor can an app's products be read: a wrong \
             secret shows at the first connect"
                .into(),
        )
    }

    /// Documented as 60 days; assume less so a missing `expires_in` is never trusted long.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(30 * 86_400)
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

    /// With organization scopes granted: the organizations the member administers
    /// (`organizationAcls`, approved administrator roles, every page), each with its name.
    async fn list_children(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        access_token: &str,
        granted_scopes: &[String],
    ) -> Result<Option<Vec<ChildAccount>>, ProviderError> {
        if !granted_scopes
            .iter()
            .any(|s| ORGANIZATION_SCOPES.contains(&s.as_str()))
        {
            return Ok(None);
        }
        // LinkedIn may serve fewer than asked: advance by what came, until `total` (or, if
        // it is missing, a short or empty page).
        const PAGE: usize = 100;
        let acls = endpoints.api("/rest/organizationAcls");
        let mut urns: Vec<String> = Vec::new();
        let mut start = 0usize;
        let mut listed_all = false;
        for _ in 0..MAX_LIST_PAGES {
            let start_param = start.to_string();
            let req = rest_get(http, &acls, access_token).query(&[
                ("q", "roleAssignee"),
                ("role", "ADMINISTRATOR"),
                ("state", "APPROVED"),
                ("start", start_param.as_str()),
                ("count", "100"),
            ]);
            let body = http.send(req).await?.into_success()?;
            let elements = body["elements"].as_array().ok_or_else(|| {
                ProviderError::malformed(
                    "the organization roles (`organizationAcls`) have no `elements`",
                )
            })?;
            for acl in elements {
                let urn = string_field(acl, "organization")
                    .or_else(|| string_field(acl, "organizationTarget"))
                    .ok_or_else(|| {
                        ProviderError::malformed("an organization role names no organization")
                    })?;
                if !urns.contains(&urn) {
                    urns.push(urn);
                }
            }
            start += elements.len();
            let done = match body["paging"]["total"].as_u64() {
                _ if elements.is_empty() => true,
                Some(total) => start as u64 >= total,
                None => elements.len() < PAGE,
            };
            if done {
                listed_all = true;
                break;
            }
        }
        if !listed_all {
            return Err(ProviderError::malformed(format!(
                "the organization roles go on past {MAX_LIST_PAGES} pages"
            )));
        }
        let mut organizations = Vec::with_capacity(urns.len());
        for urn in urns {
            let id = urn.strip_prefix(ORGANIZATION_URN).ok_or_else(|| {
                ProviderError::malformed(format!("`{urn}` is not an organization URN"))
            })?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ProviderError::malformed(format!(
                    "`{urn}` is not an organization URN"
                )));
            }
            let url = endpoints.api(&format!("/rest/organizations/{id}"));
            let org = http
                .send(rest_get(http, &url, access_token))
                .await?
                .into_success()?;
            organizations.push(ChildAccount {
                kind: AccountKind::Organization,
                provider_account_id: urn.clone(),
                username: string_field(&org, "vanityName"),
                display_name: string_field(&org, "localizedName"),
                tasks: None,
                access_token: None,
            });
        }
        Ok(Some(organizations))
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

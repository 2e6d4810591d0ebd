//! Facebook Login: no PKCE, the code exchange is a GET with the client credentials in the
//! query, scopes comma-separated, a versioned Graph API. The token it returns is short-lived,
//! so it is traded at once for a long-lived one (about 60 days).

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ChildAccount, ClientAuth, CodeExchange, CredentialCheck, DefaultEndpoints, Endpoints, Identity,
    MAX_LIST_PAGES, OAuthProvider, Provider, Renewal, TokenRefresh, TokenSet,
};
use crate::domain::AccountKind;

pub(super) struct Facebook;

#[async_trait]
impl OAuthProvider for Facebook {
    fn id(&self) -> Provider {
        Provider::named("facebook")
    }

    fn display_name(&self) -> &'static str {
        "Facebook"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &[
            "pages_show_list",
            "pages_manage_posts",
            "pages_read_engagement",
            "business_management",
        ]
    }

    /// The Graph API permissions an app can ask for with Facebook Login.
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "public_profile",
            "email",
            "pages_show_list",
            "pages_manage_posts",
            "pages_read_engagement",
            "pages_read_user_content",
            "pages_manage_metadata",
            "pages_manage_engagement",
            "pages_manage_ads",
            "pages_manage_cta",
            "pages_manage_instant_articles",
            "pages_messaging",
            "pages_utility_messaging",
            "pages_events",
            "page_events",
            "business_management",
            "read_insights",
            "publish_video",
            "publish_to_groups",
            "groups_access_member_info",
            "instagram_basic",
            "instagram_content_publish",
            "instagram_manage_comments",
            "instagram_manage_insights",
            "instagram_manage_messages",
            "instagram_manage_events",
            "instagram_shopping_tag_products",
            "instagram_branded_content_brand",
            "instagram_branded_content_creator",
            "instagram_branded_content_ads_brand",
            "ads_management",
            "ads_read",
            "attribution_read",
            "catalog_management",
            "leads_retrieval",
            "whatsapp_business_management",
            "whatsapp_business_messaging",
            "user_posts",
            "user_photos",
            "user_videos",
            "user_link",
            "user_friends",
            "user_likes",
            "user_birthday",
            "user_gender",
            "user_location",
            "user_hometown",
            "user_age_range",
            "user_messenger_contact",
        ]
    }

    /// `/me?fields=id,name` needs only `public_profile`, which every login grants; the Pages a
    /// user manages are listed with `pages_show_list`, which any other Pages permission is
    /// useless without.
    fn identity_scopes(&self, requested: &[String]) -> &'static [&'static str] {
        if requested.iter().any(|s| s.starts_with("pages_")) {
            &["pages_show_list"]
        } else {
            &[]
        }
    }

    fn default_api_version(&self) -> Option<&'static str> {
        Some("v25.0")
    }

    fn default_endpoints(&self, api_version: Option<&str>) -> DefaultEndpoints {
        let version = api_version.unwrap_or("v25.0");
        DefaultEndpoints {
            authorize_url: format!("https://www.facebook.com/{version}/dialog/oauth"),
            token_url: format!("https://graph.facebook.com/{version}/oauth/access_token"),
            api_base: "https://graph.facebook.com".into(),
        }
    }

    fn scope_separator(&self) -> &'static str {
        ","
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::Query
    }

    async fn exchange_code(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        ex: &CodeExchange<'_>,
    ) -> Result<TokenSet, ProviderError> {
        let auth = self.client_auth();
        let short = super::token_call(
            http,
            endpoints,
            auth,
            ex.client_id,
            ex.client_secret,
            &[("redirect_uri", ex.redirect_uri), ("code", ex.code)],
        )
        .await?;
        let short = super::parse_token_response(&short)?;
        let long = super::token_call(
            http,
            endpoints,
            auth,
            ex.client_id,
            ex.client_secret,
            &[
                ("grant_type", "fb_exchange_token"),
                ("fb_exchange_token", short.access_token.expose_secret()),
            ],
        )
        .await?;
        super::parse_token_response(&long)
    }

    /// Meta's client-credentials grant at the token endpoint answers an app access token for
    /// a good id and secret, and an `OAuthException` otherwise.
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

    /// No refresh token: the long-lived token's 60 days are a deadline for a new consent.
    fn renewal(&self) -> Renewal {
        Renewal::Never
    }

    /// The long-lived token lasts about 60 days; assume fewer when the answer omits it.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        Some(50 * 86_400)
    }

    /// Revoking is deleting the app's permissions for the user: `DELETE /me/permissions`.
    async fn revoke(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        let req = http
            .client()
            .delete(endpoints.api(&format!("/{}/me/permissions", endpoints.api_version)))
            .bearer_auth(r.access_token);
        http.send(req).await?.into_success()?;
        Ok(true)
    }

    /// The Pages the user manages (`/me/accounts`), each with its own Page token, following
    /// the `after` cursor while Meta says a `next` page exists. The cursor is sent to the
    /// configured Graph host rather than following `paging.next` (a URL from the answer).
    async fn list_children(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        access_token: &str,
        _granted_scopes: &[String],
    ) -> Result<Option<Vec<ChildAccount>>, ProviderError> {
        let url = endpoints.api(&format!("/{}/me/accounts", endpoints.api_version));
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut req = http
                .client()
                .get(&url)
                .query(&[("fields", "id,name,access_token,tasks"), ("limit", "100")])
                .bearer_auth(access_token);
            if let Some(cursor) = &after {
                req = req.query(&[("after", cursor)]);
            }
            let body = http.send(req).await?.into_success()?;
            let data = body["data"].as_array().ok_or_else(|| {
                ProviderError::malformed("the Pages list (`/me/accounts`) has no `data` array")
            })?;
            for page in data {
                pages.push(ChildAccount {
                    kind: AccountKind::Page,
                    provider_account_id: super::required_id(page, "id")?,
                    username: None,
                    display_name: string_field(page, "name"),
                    tasks: super::string_list(&page["tasks"]),
                    access_token: string_field(page, "access_token").map(Into::into),
                });
            }
            after = match (
                body["paging"]["next"].as_str(),
                body["paging"]["cursors"]["after"].as_str(),
            ) {
                (Some(_), Some(cursor)) if !data.is_empty() => Some(cursor.to_owned()),
                _ => return Ok(Some(pages)),
            };
        }
        Err(ProviderError::malformed(format!(
            "the Pages list goes on past {MAX_LIST_PAGES} pages"
        )))
    }

    async fn identify(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError> {
        let req = http
            .client()
            .get(endpoints.api(&format!("/{}/me", endpoints.api_version)))
            .query(&[("fields", "id,name")])
            .bearer_auth(tokens.access_token.expose_secret());
        let body = http.send(req).await?.into_success()?;
        Ok(Identity {
            provider_account_id: super::required_id(&body, "id")?,
            username: None,
            display_name: string_field(&body, "name"),
        })
    }
}

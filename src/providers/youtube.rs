//! YouTube, through Google's OAuth 2.0 (`google.rs` holds what it shares with Google Business
//! Profile). The connected account is the Google account (userinfo); each YouTube channel it
//! manages (brand accounts included) is a child account of kind `channel`, used with the
//! Google account's token.

use async_trait::async_trait;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ChildAccount, ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity,
    OAuthProvider, Provider, Renewal, TokenRefresh, TokenSet, google,
};
use crate::domain::AccountKind;

pub(super) struct Youtube;

const UPLOAD: &str = "https://www.googleapis.com/auth/youtube.upload";
const READONLY: &str = "https://www.googleapis.com/auth/youtube.readonly";
/// Scopes that let `channels.list?mine=true` read the user's channels.
const CHANNEL_READERS: &[&str] = &[
    READONLY,
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl",
];

#[async_trait]
impl OAuthProvider for Youtube {
    fn id(&self) -> Provider {
        Provider::named("youtube")
    }

    fn display_name(&self) -> &'static str {
        "YouTube"
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["openid", "email", "profile", UPLOAD, READONLY]
    }

    /// OpenID Connect's scopes and YouTube's Data and Analytics API scopes.
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "openid",
            "email",
            "profile",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/userinfo.profile",
            "https://www.googleapis.com/auth/youtube",
            "https://www.googleapis.com/auth/youtube.channel-memberships.creator",
            "https://www.googleapis.com/auth/youtube.force-ssl",
            READONLY,
            UPLOAD,
            "https://www.googleapis.com/auth/youtubepartner",
            "https://www.googleapis.com/auth/youtubepartner-channel-audit",
            "https://www.googleapis.com/auth/yt-analytics.readonly",
            "https://www.googleapis.com/auth/yt-analytics-monetary.readonly",
        ]
    }

    /// userinfo's `sub` needs `openid`; listing the channels needs a scope that reads them.
    fn identity_scopes(&self, requested: &[String]) -> &'static [&'static str] {
        if requested
            .iter()
            .any(|s| CHANNEL_READERS.contains(&s.as_str()))
        {
            &["openid"]
        } else {
            &["openid", READONLY]
        }
    }

    google::google_oauth!();

    async fn check_credentials(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        client_id: &str,
        client_secret: &str,
    ) -> CredentialCheck {
        google::probe_credentials(http, endpoints, client_id, client_secret).await
    }

    async fn revoke(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        google::revoke(http, endpoints, r).await
    }

    /// The channels of the Google account (`channels?part=snippet&mine=true`), every page.
    /// `None` when the grant cannot read them (only `youtube.upload` was granted).
    async fn list_children(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        access_token: &str,
        granted_scopes: &[String],
    ) -> Result<Option<Vec<ChildAccount>>, ProviderError> {
        if !granted_scopes
            .iter()
            .any(|s| CHANNEL_READERS.contains(&s.as_str()))
        {
            return Ok(None);
        }
        let url = google::api_url(endpoints, "www.googleapis.com", "/youtube/v3/channels");
        let mut channels = Vec::new();
        google::each_page(
            http,
            &url,
            &[("part", "snippet"), ("mine", "true"), ("maxResults", "50")],
            access_token,
            "the YouTube Data API",
            |body| {
                // A Google account without a channel answers no `items` at all.
                for item in body["items"].as_array().into_iter().flatten() {
                    let snippet = &item["snippet"];
                    channels.push(ChildAccount {
                        kind: AccountKind::Channel,
                        provider_account_id: super::required_id(item, "id")?,
                        username: string_field(snippet, "customUrl"),
                        display_name: string_field(snippet, "title"),
                        tasks: None,
                        access_token: None,
                    });
                }
                Ok(())
            },
        )
        .await?;
        Ok(Some(channels))
    }

    async fn identify(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError> {
        google::userinfo(http, endpoints, tokens).await
    }
}

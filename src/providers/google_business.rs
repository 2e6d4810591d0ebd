//! Google Business Profile, through Google's OAuth 2.0 (`google.rs` holds what it shares with
//! YouTube). The connected account is the Google account (userinfo); each business location it
//! manages is a child account of kind `location`, used with the Google account's token. The
//! locations are listed per business account: the accounts from the Account Management API,
//! then each account's locations from the Business Information API, every page of both.
//!
//! Google keeps both APIs at a quota of 0 until it approves the project's access request: such
//! a refusal is the app's (`ProviderError::AppRefused`), never a dead account.

use async_trait::async_trait;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ChildAccount, ClientAuth, CredentialCheck, DefaultEndpoints, Endpoints, Identity,
    OAuthProvider, Provider, Renewal, TokenRefresh, TokenSet, google,
};
use crate::domain::AccountKind;

pub(super) struct GoogleBusiness;

const MANAGE: &str = "https://www.googleapis.com/auth/business.manage";
const API: &str = "the Google Business Profile APIs";

#[async_trait]
impl OAuthProvider for GoogleBusiness {
    fn id(&self) -> Provider {
        Provider::named("google_business")
    }

    fn display_name(&self) -> &'static str {
        "Google Business Profile"
    }

    fn other_names(&self) -> &'static [&'static str] {
        &["gbp", "google_my_business", "gmb"]
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["openid", "email", "profile", MANAGE]
    }

    /// OpenID Connect's scopes and Business Profile's (the older `plus.business.manage` is
    /// still accepted by Google).
    fn known_scopes(&self) -> &'static [&'static str] {
        &[
            "openid",
            "email",
            "profile",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/userinfo.profile",
            MANAGE,
            "https://www.googleapis.com/auth/plus.business.manage",
        ]
    }

    /// userinfo's `sub` needs `openid`; the locations need `business.manage`.
    fn identity_scopes(&self, _requested: &[String]) -> &'static [&'static str] {
        &["openid", MANAGE]
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

    /// Every location of every business account the Google account can manage. Its
    /// `provider_account_id` is the resource name Google's posting APIs take,
    /// `accounts/{account}/locations/{location}`. `None` without `business.manage`.
    async fn list_children(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        access_token: &str,
        granted_scopes: &[String],
    ) -> Result<Option<Vec<ChildAccount>>, ProviderError> {
        if !granted_scopes
            .iter()
            .any(|s| s == MANAGE || s.ends_with("/auth/plus.business.manage"))
        {
            return Ok(None);
        }
        let mut accounts = Vec::new();
        google::each_page(
            http,
            &google::api_url(
                endpoints,
                "mybusinessaccountmanagement.googleapis.com",
                "/v1/accounts",
            ),
            &[("pageSize", "20")],
            access_token,
            API,
            |body| {
                for account in body["accounts"].as_array().into_iter().flatten() {
                    accounts.push(resource_name(account, "accounts/")?);
                }
                Ok(())
            },
        )
        .await?;
        let mut locations = Vec::new();
        for account in &accounts {
            let url = google::api_url(
                endpoints,
                "mybusinessbusinessinformation.googleapis.com",
                &format!("/v1/{account}/locations"),
            );
            google::each_page(
                http,
                &url,
                &[("readMask", "name,title"), ("pageSize", "100")],
                access_token,
                API,
                |body| {
                    for location in body["locations"].as_array().into_iter().flatten() {
                        let name = resource_name(location, "locations/")?;
                        locations.push(ChildAccount {
                            kind: AccountKind::Location,
                            provider_account_id: format!("{account}/{name}"),
                            username: None,
                            display_name: string_field(location, "title"),
                            tasks: None,
                            access_token: None,
                        });
                    }
                    Ok(())
                },
            )
            .await?;
        }
        Ok(Some(locations))
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

/// A resource's `name` (`accounts/123`, `locations/456`), checked to be `prefix` and one path
/// segment, since it goes into the next call's path.
fn resource_name(item: &serde_json::Value, prefix: &str) -> Result<String, ProviderError> {
    let name = super::required_id(item, "name")?;
    match name.strip_prefix(prefix) {
        Some(id)
            if !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(name)
        }
        _ => Err(ProviderError::malformed(format!(
            "a resource name is not `{prefix}<id>`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resource_names_are_one_checked_segment() {
        assert_eq!(
            resource_name(&json!({"name": "accounts/123"}), "accounts/").unwrap(),
            "accounts/123"
        );
        for bad in [
            "accounts/",
            "accounts/1/../x",
            "locations/1",
            "accounts/1?x",
            "accounts/1/2",
        ] {
            assert!(
                resource_name(&json!({"name": bad}), "accounts/").is_err(),
                "{bad}"
            );
        }
    }
}

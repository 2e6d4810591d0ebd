//! `/v1/accounts`: connected accounts (read side). Never a token.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};

use crate::api::error::ApiError;
use crate::api::types::Checked;
use crate::api::{ApiTags, DashboardAuth};
use crate::domain::AccountId;
use crate::providers::Provider;
use crate::service::{Account, Dravo};

/// A connected account.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Account", example)]
pub struct AccountView {
    /// `acc_` and 20 lowercase base32 characters.
    pub id: String,
    pub provider: Checked<Provider>,
    /// The BYOK app it was connected with; null for the provider's default app.
    pub oauth_app_id: Option<String>,
    /// The account's id at the provider.
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// The scopes the user granted.
    pub scopes: Vec<String>,
    /// `active` or `needs_reauth`.
    pub status: String,
    /// When the access token expires (RFC 3339, UTC); null when the provider did not say.
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            provider: Checked(a.provider),
            oauth_app_id: a.oauth_app_id,
            provider_account_id: a.provider_account_id,
            username: a.username,
            display_name: a.display_name,
            scopes: a.scopes,
            status: a.status,
            expires_at: a.expires_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

impl Example for AccountView {
    fn example() -> Self {
        AccountView {
            id: "acc_7d2kq4m5n6p7r2s3t4v5".into(),
            provider: Checked(Provider::X),
            oauth_app_id: Some("oa_4f3ka2m7q9x2c5v8b1n6".into()),
            provider_account_id: "1234567890".into(),
            username: Some("dravo_dev".into()),
            display_name: Some("Dravo".into()),
            scopes: ["tweet.read", "tweet.write", "users.read", "offline.access"]
                .map(String::from)
                .to_vec(),
            status: "active".into(),
            expires_at: Some("2026-01-01T02:00:00Z".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }
}

pub struct AccountsApi;

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// List connected accounts
    ///
    /// Your connected accounts, oldest first. Tokens are never returned here.
    #[oai(path = "/v1/accounts", method = "get", operation_id = "listAccounts")]
    async fn list(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        /// Filter by provider.
        provider: Query<Option<Checked<Provider>>>,
    ) -> Result<Json<Vec<AccountView>>, ApiError> {
        let accounts = dravo
            .list_accounts(&auth.0, provider.0.map(|p| p.0))
            .await?;
        Ok(Json(accounts.into_iter().map(Into::into).collect()))
    }

    /// Get a connected account
    #[oai(path = "/v1/accounts/:id", method = "get", operation_id = "getAccount")]
    async fn get(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
    ) -> Result<Json<AccountView>, ApiError> {
        let account = dravo.get_account(&auth.0, &id.0.0).await?;
        Ok(Json(account.into()))
    }
}

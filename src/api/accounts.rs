//! `/v1/accounts`: connected accounts (read side). Never a token.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use crate::api::error::ApiError;
use crate::api::payload::JsonBody;
use crate::api::types::Checked;
use crate::api::{ApiTags, DashboardAuth};
use crate::domain::AccountId;
use crate::domain::Provider;
use crate::service::Dravo;
use crate::views::AccountView;

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
    ) -> Result<JsonBody<Vec<AccountView>>, ApiError> {
        let list = dravo
            .list_accounts_shared(&auth.0, provider.0.map(|p| p.0))
            .await?;
        // The shared list renders its body once; later requests send the same bytes.
        let body = list.rendered.get_or_init(|| {
            let views: Vec<AccountView> = list.items.iter().cloned().map(Into::into).collect();
            JsonBody::render(&views)
        });
        Ok(JsonBody::from_rendered(body.clone()))
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

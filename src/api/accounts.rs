//! `/v1/accounts`: connected accounts (read side). Never a token.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use crate::api::error::ApiError;
use crate::api::payload::JsonBody;
use crate::api::types::Checked;
use crate::api::{ApiTags, DashboardAuth};
use crate::domain::AccountId;
use crate::domain::Provider;
use crate::service::Dravo;
use crate::views::AccountView;

#[derive(ApiResponse)]
pub enum AccountList {
    /// Your connected accounts (of the provider asked for), oldest first; an empty array
    /// when none.
    #[oai(status = 200)]
    Ok(JsonBody<Vec<AccountView>>),
}

#[derive(ApiResponse)]
pub enum AccountFound {
    /// The connected account.
    #[oai(status = 200)]
    Ok(Json<AccountView>),
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
    ) -> Result<AccountList, ApiError> {
        let list = dravo
            .list_accounts_shared(&auth.0, provider.0.map(|p| p.0))
            .await?;
        // The shared list renders its body once; later requests send the same bytes.
        let body = list.rendered.get_or_init(|| {
            let views: Vec<AccountView> = list.items.iter().cloned().map(Into::into).collect();
            JsonBody::render(&views)
        });
        Ok(AccountList::Ok(JsonBody::from_rendered(body.clone())))
    }

    /// Get a connected account
    #[oai(path = "/v1/accounts/:id", method = "get", operation_id = "getAccount")]
    async fn get(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
    ) -> Result<AccountFound, ApiError> {
        let account = dravo.get_account(&auth.0, &id.0.0).await?;
        Ok(AccountFound::Ok(Json(account.into())))
    }
}
